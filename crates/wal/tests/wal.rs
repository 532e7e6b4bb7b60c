//! Black-box tests of the WAL through its public API: durability, torn
//! tails, corruption, checkpoints and concurrency.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use sluice_wal::{
    Corruption, FsyncPolicy, RecordSource, Replay, Wal, WalConfig, WalError, MAX_RECORD_LEN,
};

fn config(dir: &Path, segment_size: u64, fsync: FsyncPolicy) -> WalConfig {
    WalConfig {
        dir: dir.to_path_buf(),
        segment_size,
        fsync,
    }
}

/// A record of varying size whose content identifies `i`.
fn record(i: u64) -> Vec<u8> {
    let mut data = format!("record-{i}-").into_bytes();
    data.resize(data.len() + (i as usize * 37) % 300, (i % 251) as u8);
    data
}

fn replay_all(replay: &mut Replay) -> Vec<(RecordSource, Vec<u8>)> {
    let mut records = Vec::new();
    while let Some(record) = replay.next_record().unwrap() {
        records.push((record.source, record.data.to_vec()));
    }
    records
}

fn segment_records(records: &[(RecordSource, Vec<u8>)]) -> Vec<Vec<u8>> {
    records
        .iter()
        .filter(|(source, _)| *source == RecordSource::Segment)
        .map(|(_, data)| data.clone())
        .collect()
}

fn write_acknowledged(wal: &Wal, range: std::ops::Range<u64>) -> Vec<Vec<u8>> {
    let tickets: Vec<_> = range
        .clone()
        .map(|i| wal.submit(record(i)).unwrap())
        .collect();
    for ticket in tickets {
        ticket.wait().unwrap();
    }
    range.map(record).collect()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn segment_paths(dir: &Path) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|name| name.bytes().all(|byte| byte.is_ascii_digit()))
        .map(|name| dir.join(name))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for name in files(from) {
        fs::copy(from.join(&name), to.join(&name)).unwrap();
    }
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5a;
    fs::write(path, bytes).unwrap();
}

#[test]
fn handles_are_thread_safe() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>(_: &T) {}
    assert_send_sync::<Wal>();
    assert_send_sync::<sluice_wal::Ticket>();
    assert_send_sync::<Replay>();
    let dir = tempfile::tempdir().unwrap();
    let (wal, _replay) = Wal::open(config(dir.path(), 1 << 20, FsyncPolicy::Never)).unwrap();
    let future = wal.submit(b"x".to_vec()).unwrap().wait_async();
    assert_send(&future);
    futures::executor::block_on(future).unwrap();
}

#[test]
fn records_round_trip_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, mut replay) = Wal::open(config(dir.path(), 1 << 20, FsyncPolicy::Always)).unwrap();
    assert!(replay_all(&mut replay).is_empty());
    drop(replay);
    let written = write_acknowledged(&wal, 0..100);
    let stats = wal.stats();
    assert_eq!(stats.records_written, 100);
    assert!(stats.fsyncs >= 1 && stats.fsyncs <= 100);
    assert_eq!(stats.segments, 1);
    wal.close().unwrap();

    let (_wal, mut replay) = Wal::open(config(dir.path(), 1 << 20, FsyncPolicy::Always)).unwrap();
    let replayed = replay_all(&mut replay);
    assert_eq!(segment_records(&replayed), written);
    assert_eq!(replay.stats().segment_records, 100);
    assert_eq!(replay.stats().checkpoint_records, 0);
    assert!(replay.stats().is_clean());
}

#[test]
fn segment_files_have_header_and_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, replay) = Wal::open(config(dir.path(), 1 << 20, FsyncPolicy::Never)).unwrap();
    drop(replay);
    wal.submit(b"hello".to_vec()).unwrap().wait().unwrap();
    wal.close().unwrap();
    let bytes = fs::read(dir.path().join("00000000")).unwrap();
    let mut expected = b"SLWS\x01\x00\x00\x00".to_vec();
    expected.extend_from_slice(&5u32.to_be_bytes());
    expected.extend_from_slice(&crc32fast::hash(b"hello").to_be_bytes());
    expected.extend_from_slice(b"hello");
    assert_eq!(bytes, expected);
}

#[test]
fn acknowledged_records_survive_a_crash_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let (wal, replay) = Wal::open(config(dir.path(), 4096, FsyncPolicy::Always)).unwrap();
    drop(replay);
    let written = write_acknowledged(&wal, 0..200);
    // The writer is still alive: the copy is what a crash right now leaves.
    copy_dir(dir.path(), crashed.path());

    let (reopened, mut replay) =
        Wal::open(config(crashed.path(), 4096, FsyncPolicy::Always)).unwrap();
    assert_eq!(segment_records(&replay_all(&mut replay)), written);
    assert!(replay.stats().segments > 1, "records spread over segments");
    assert!(replay.stats().is_clean());
    drop(replay);
    // A reopened WAL keeps appending after the replayed records.
    let more = write_acknowledged(&reopened, 200..210);
    drop(reopened);
    let (_wal, mut replay) = Wal::open(config(crashed.path(), 4096, FsyncPolicy::Always)).unwrap();
    let expected: Vec<_> = written.into_iter().chain(more).collect();
    assert_eq!(segment_records(&replay_all(&mut replay)), expected);
    drop(wal);
}

#[test]
fn leaked_wal_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, replay) = Wal::open(config(dir.path(), 1 << 20, FsyncPolicy::Always)).unwrap();
    drop(replay);
    let written = write_acknowledged(&wal, 0..50);
    // No close, no drop: the writer thread lives on, as in a killed process.
    std::mem::forget(wal);
    let (_wal, mut replay) = Wal::open(config(dir.path(), 1 << 20, FsyncPolicy::Always)).unwrap();
    assert_eq!(segment_records(&replay_all(&mut replay)), written);
}

#[test]
fn drop_without_close_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, replay) = Wal::open(config(dir.path(), 1 << 20, FsyncPolicy::Never)).unwrap();
    drop(replay);
    let tickets: Vec<_> = (0..20).map(|i| wal.submit(record(i)).unwrap()).collect();
    drop(wal);
    for ticket in tickets {
        ticket.wait().unwrap();
    }
    let (_wal, mut replay) = Wal::open(config(dir.path(), 1 << 20, FsyncPolicy::Never)).unwrap();
    assert_eq!(replay_all(&mut replay).len(), 20);
}

#[test]
fn closed_wal_rejects_submissions() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, replay) = Wal::open(config(dir.path(), 1 << 20, FsyncPolicy::Never)).unwrap();
    drop(replay);
    let clone = wal.clone();
    wal.close().unwrap();
    assert!(matches!(clone.submit(b"x".to_vec()), Err(WalError::Closed)));
    assert!(matches!(
        clone.checkpoint(|_| Ok(())),
        Err(WalError::Closed)
    ));
    clone.close().unwrap();
}

#[test]
fn invalid_records_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _replay) = Wal::open(config(dir.path(), 1 << 20, FsyncPolicy::Never)).unwrap();
    assert!(matches!(wal.submit(Vec::new()), Err(WalError::EmptyRecord)));
    assert!(matches!(
        wal.submit(vec![0; MAX_RECORD_LEN + 1]),
        Err(WalError::RecordTooLarge { .. })
    ));
}

#[test]
fn async_wait_completes() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _replay) = Wal::open(config(dir.path(), 1 << 20, FsyncPolicy::Always)).unwrap();
    let ticket = wal.submit(b"async".to_vec()).unwrap();
    futures::executor::block_on(ticket.wait_async()).unwrap();
}

#[test]
fn rotation_respects_segment_size() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, replay) = Wal::open(config(dir.path(), 2048, FsyncPolicy::Never)).unwrap();
    drop(replay);
    write_acknowledged(&wal, 0..300);
    let stats = wal.stats();
    wal.close().unwrap();
    let segments = segment_paths(dir.path());
    assert!(segments.len() > 10);
    assert_eq!(stats.segments, segments.len() as u64);
    for (position, path) in segments.iter().enumerate() {
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            format!("{position:08}")
        );
        let len = fs::metadata(path).unwrap().len();
        // A record is never split: a segment overshoots by at most one record.
        assert!(len <= 2048 + 8 + 400, "{} is {len} bytes", path.display());
    }
}

#[test]
fn checkpoint_replaces_covered_segments() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1024, FsyncPolicy::Always);
    let (wal, replay) = Wal::open(cfg.clone()).unwrap();
    drop(replay);
    write_acknowledged(&wal, 0..50);
    let segments_before = segment_paths(dir.path()).len();
    assert!(segments_before > 2);

    let stats = wal
        .checkpoint(|writer| {
            assert_eq!(writer.index() as usize, segments_before - 1);
            writer.write(b"snapshot-a")?;
            writer.write(b"snapshot-b")
        })
        .unwrap();
    assert_eq!(stats.index as usize, segments_before - 1);
    assert_eq!(stats.records, 2);
    assert_eq!(stats.segments_deleted as usize, segments_before);
    let checkpoint_name = format!("checkpoint.{:08}", stats.index);
    assert_eq!(
        files(dir.path()),
        vec![format!("{:08}", stats.index + 1), checkpoint_name.clone()]
    );
    assert_eq!(
        fs::metadata(dir.path().join(&checkpoint_name))
            .unwrap()
            .len(),
        stats.bytes
    );

    let after = write_acknowledged(&wal, 50..60);
    wal.close().unwrap();

    let (wal, mut replay) = Wal::open(cfg.clone()).unwrap();
    let replayed = replay_all(&mut replay);
    let mut expected = vec![
        (RecordSource::Checkpoint, b"snapshot-a".to_vec()),
        (RecordSource::Checkpoint, b"snapshot-b".to_vec()),
    ];
    expected.extend(after.into_iter().map(|data| (RecordSource::Segment, data)));
    assert_eq!(replayed, expected);
    assert_eq!(replay.stats().checkpoint, Some(stats.index));
    assert_eq!(replay.stats().checkpoint_records, 2);
    drop(replay);

    // A second checkpoint deletes the first one.
    let second = wal
        .checkpoint(|writer| writer.write(b"snapshot-c"))
        .unwrap();
    assert!(second.index > stats.index);
    assert_eq!(second.checkpoints_deleted, 1);
    assert!(!dir.path().join(&checkpoint_name).exists());
    wal.close().unwrap();
    let (_wal, mut replay) = Wal::open(cfg).unwrap();
    assert_eq!(
        replay_all(&mut replay),
        vec![(RecordSource::Checkpoint, b"snapshot-c".to_vec())]
    );
}

#[test]
fn writes_continue_during_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1 << 20, FsyncPolicy::Always);
    let (wal, replay) = Wal::open(cfg.clone()).unwrap();
    drop(replay);
    let before = write_acknowledged(&wal, 0..10);
    let during = std::cell::RefCell::new(Vec::new());
    wal.checkpoint(|writer| {
        // Submissions made while the snapshot is written land after it.
        *during.borrow_mut() = write_acknowledged(&wal, 10..20);
        for data in &before {
            writer.write(data)?;
        }
        Ok(())
    })
    .unwrap();
    wal.close().unwrap();
    let (_wal, mut replay) = Wal::open(cfg).unwrap();
    let replayed = replay_all(&mut replay);
    let checkpointed: Vec<_> = replayed
        .iter()
        .filter(|(source, _)| *source == RecordSource::Checkpoint)
        .map(|(_, data)| data.clone())
        .collect();
    assert_eq!(checkpointed, before);
    assert_eq!(segment_records(&replayed), during.into_inner());
}

#[test]
fn checkpoint_refused_during_replay() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1 << 20, FsyncPolicy::Never);
    let (wal, replay) = Wal::open(cfg.clone()).unwrap();
    drop(replay);
    write_acknowledged(&wal, 0..3);
    wal.close().unwrap();

    let (wal, mut replay) = Wal::open(cfg).unwrap();
    assert!(matches!(
        wal.checkpoint(|_| Ok(())),
        Err(WalError::ReplayInProgress)
    ));
    replay_all(&mut replay);
    // Exhausted replay no longer blocks checkpoints.
    wal.checkpoint(|_| Ok(())).unwrap();
}

#[test]
fn failed_checkpoint_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1 << 20, FsyncPolicy::Always);
    let (wal, replay) = Wal::open(cfg.clone()).unwrap();
    drop(replay);
    let written = write_acknowledged(&wal, 0..5);
    let error = wal
        .checkpoint(|writer| {
            writer.write(b"partial")?;
            Err(WalError::checkpoint_aborted("snapshot failed"))
        })
        .unwrap_err();
    assert!(matches!(error, WalError::CheckpointAborted { .. }));
    assert!(error.to_string().contains("snapshot failed"));
    assert!(files(dir.path())
        .iter()
        .all(|name| !name.starts_with("checkpoint")));
    assert_eq!(wal.stats().checkpoint_errors, 1);
    wal.close().unwrap();
    let (_wal, mut replay) = Wal::open(cfg).unwrap();
    assert_eq!(segment_records(&replay_all(&mut replay)), written);
}

#[test]
fn leftover_temporary_checkpoint_is_ignored_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1 << 20, FsyncPolicy::Never);
    let (wal, replay) = Wal::open(cfg.clone()).unwrap();
    drop(replay);
    let written = write_acknowledged(&wal, 0..5);
    wal.close().unwrap();
    fs::write(dir.path().join("checkpoint.00000000.tmp"), b"half written").unwrap();
    let (_wal, mut replay) = Wal::open(cfg).unwrap();
    assert_eq!(segment_records(&replay_all(&mut replay)), written);
    assert!(!dir.path().join("checkpoint.00000000.tmp").exists());
}

#[test]
fn corrupt_record_in_last_segment_truncates_there() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1 << 20, FsyncPolicy::Always);
    let (wal, replay) = Wal::open(cfg.clone()).unwrap();
    drop(replay);
    let written = write_acknowledged(&wal, 0..10);
    wal.close().unwrap();
    let segment = dir.path().join("00000000");
    let len_before = fs::metadata(&segment).unwrap().len();
    // Offset of record 6's payload: header, then frames of records 0..6.
    let offset: u64 = 8 + written[..6].iter().map(|r| 8 + r.len() as u64).sum::<u64>();
    flip_byte(&segment, offset + 8 + 3);

    let (wal, mut replay) = Wal::open(cfg.clone()).unwrap();
    assert_eq!(segment_records(&replay_all(&mut replay)), written[..6]);
    let tail = replay.stats().corrupt_tail.clone().unwrap();
    assert_eq!(tail.segment, 0);
    assert_eq!(tail.offset, offset);
    assert_eq!(tail.bytes_dropped, len_before - offset);
    assert_eq!(tail.reason, Corruption::ChecksumMismatch);
    assert_eq!(fs::metadata(&segment).unwrap().len(), offset);
    drop(replay);
    let more = write_acknowledged(&wal, 100..103);
    wal.close().unwrap();

    let (_wal, mut replay) = Wal::open(cfg).unwrap();
    let expected: Vec<_> = written[..6].iter().cloned().chain(more).collect();
    assert_eq!(segment_records(&replay_all(&mut replay)), expected);
    assert!(replay.stats().is_clean());
}

#[test]
fn zero_filled_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1 << 20, FsyncPolicy::Never);
    let (wal, replay) = Wal::open(cfg.clone()).unwrap();
    drop(replay);
    let written = write_acknowledged(&wal, 0..4);
    wal.close().unwrap();
    let segment = dir.path().join("00000000");
    let file = OpenOptions::new().write(true).open(&segment).unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(len + 4096).unwrap();
    drop(file);
    let (_wal, mut replay) = Wal::open(cfg).unwrap();
    assert_eq!(segment_records(&replay_all(&mut replay)), written);
    let tail = replay.stats().corrupt_tail.clone().unwrap();
    assert_eq!(tail.reason, Corruption::ZeroLength);
    assert_eq!(tail.bytes_dropped, 4096);
}

#[test]
fn corrupt_older_segment_skips_its_rest_only() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1024, FsyncPolicy::Never);
    let (wal, replay) = Wal::open(cfg.clone()).unwrap();
    drop(replay);
    let written = write_acknowledged(&wal, 0..40);
    wal.close().unwrap();
    let segments = segment_paths(dir.path());
    assert!(segments.len() >= 3);

    // Which records went to segment 0: decode its frame lengths.
    let first = fs::read(&segments[0]).unwrap();
    let mut offsets = Vec::new();
    let mut offset = 8usize;
    while offset < first.len() {
        offsets.push(offset);
        let len = u32::from_be_bytes(first[offset..offset + 4].try_into().unwrap()) as usize;
        offset += 8 + len;
    }
    assert!(offsets.len() >= 3);
    // Corrupt the second record's length so it points past the file end.
    flip_byte(&segments[0], offsets[1] as u64 + 1);

    let (_wal, mut replay) = Wal::open(cfg).unwrap();
    let replayed = segment_records(&replay_all(&mut replay));
    let in_first = offsets.len();
    let expected: Vec<_> = written[..1]
        .iter()
        .chain(&written[in_first..])
        .cloned()
        .collect();
    assert_eq!(replayed, expected);
    let stats = replay.stats();
    assert!(stats.corrupt_tail.is_none());
    assert_eq!(stats.corrupt_segments.len(), 1);
    let corrupt = &stats.corrupt_segments[0];
    assert_eq!(corrupt.segment, 0);
    assert_eq!(corrupt.offset, offsets[1] as u64);
    assert_eq!(corrupt.bytes_skipped, (first.len() - offsets[1]) as u64);
}

#[test]
fn corrupt_checkpoint_falls_back_to_segments_that_still_exist() {
    let dir = tempfile::tempdir().unwrap();
    let saved = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1024, FsyncPolicy::Always);
    let (wal, replay) = Wal::open(cfg.clone()).unwrap();
    drop(replay);
    let written = write_acknowledged(&wal, 0..30);
    copy_dir(dir.path(), saved.path());
    let stats = wal.checkpoint(|writer| writer.write(b"snapshot")).unwrap();
    let after = write_acknowledged(&wal, 30..35);
    wal.close().unwrap();
    // As if the process died between the rename and the segment deletion.
    for path in segment_paths(saved.path()) {
        let target = dir.path().join(path.file_name().unwrap());
        if !target.exists() {
            fs::copy(&path, target).unwrap();
        }
    }
    let checkpoint = dir.path().join(format!("checkpoint.{:08}", stats.index));
    flip_byte(&checkpoint, 12);

    let (_wal, mut replay) = Wal::open(cfg).unwrap();
    let replayed = replay_all(&mut replay);
    let expected: Vec<_> = written.into_iter().chain(after).collect();
    assert!(replayed
        .iter()
        .all(|(source, _)| *source == RecordSource::Segment));
    assert_eq!(segment_records(&replayed), expected);
    let corrupt = &replay.stats().corrupt_checkpoints;
    assert_eq!(corrupt.len(), 1);
    assert_eq!(corrupt[0].checkpoint, stats.index);
    assert_eq!(corrupt[0].reason, Corruption::ChecksumMismatch);
    assert_eq!(replay.stats().checkpoint, None);
}

#[test]
fn corrupt_checkpoint_without_its_segments_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1024, FsyncPolicy::Always);
    let (wal, replay) = Wal::open(cfg.clone()).unwrap();
    drop(replay);
    write_acknowledged(&wal, 0..30);
    let stats = wal.checkpoint(|writer| writer.write(b"snapshot")).unwrap();
    wal.close().unwrap();
    let checkpoint = dir.path().join(format!("checkpoint.{:08}", stats.index));
    let len = fs::metadata(&checkpoint).unwrap().len();
    // Drop the trailer: a truncated checkpoint.
    OpenOptions::new()
        .write(true)
        .open(&checkpoint)
        .unwrap()
        .set_len(len - 16)
        .unwrap();

    let error = Wal::open(cfg.clone()).unwrap_err();
    match &error {
        WalError::CheckpointUnrecoverable {
            checkpoint: path,
            reason,
            missing_segments,
        } => {
            assert_eq!(path, &checkpoint);
            assert_eq!(*reason, Corruption::MissingTrailer);
            assert_eq!(*missing_segments, 0..=stats.index);
        }
        other => panic!("unexpected error {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(&checkpoint.display().to_string()),
        "{message}"
    );
    assert!(
        message.contains(&format!("00000000..={:08}", stats.index)),
        "{message}"
    );

    // The operator's way out: delete the checkpoint, keep the newer segments.
    fs::remove_file(&checkpoint).unwrap();
    let (_wal, mut replay) = Wal::open(cfg).unwrap();
    assert!(replay_all(&mut replay).is_empty());
}

#[test]
fn missing_segment_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1024, FsyncPolicy::Never);
    let (wal, replay) = Wal::open(cfg.clone()).unwrap();
    drop(replay);
    write_acknowledged(&wal, 0..40);
    wal.close().unwrap();
    fs::remove_file(dir.path().join("00000001")).unwrap();
    match Wal::open(cfg) {
        Err(WalError::SegmentGap {
            missing_segments, ..
        }) => assert_eq!(missing_segments, 1..=1),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn unknown_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1 << 20, FsyncPolicy::Never);
    let (wal, replay) = Wal::open(cfg.clone()).unwrap();
    drop(replay);
    write_acknowledged(&wal, 0..3);
    wal.close().unwrap();
    let segment = dir.path().join("00000000");
    let mut bytes = fs::read(&segment).unwrap();
    bytes[4] = 2;
    fs::write(&segment, &bytes).unwrap();
    assert!(matches!(
        Wal::open(cfg),
        Err(WalError::UnsupportedVersion { version: 2, .. })
    ));
    assert_eq!(fs::read(&segment).unwrap(), bytes);
}

#[test]
fn concurrent_submitters_keep_their_order() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 300;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 64 * 1024, FsyncPolicy::Always);
    let (wal, replay) = Wal::open(cfg.clone()).unwrap();
    drop(replay);
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let wal = wal.clone();
            scope.spawn(move || {
                let mut tickets = Vec::new();
                for sequence in 0..PER_THREAD {
                    let mut data = Vec::new();
                    data.extend_from_slice(&thread.to_be_bytes());
                    data.extend_from_slice(&sequence.to_be_bytes());
                    data.resize(16 + (sequence as usize % 64), 0xab);
                    tickets.push(wal.submit(data).unwrap());
                    // Mix pipelined and wait-per-record submitters.
                    if thread % 2 == 0 {
                        for ticket in tickets.drain(..) {
                            ticket.wait().unwrap();
                        }
                    }
                }
                for ticket in tickets {
                    ticket.wait().unwrap();
                }
            });
        }
    });
    let stats = wal.stats();
    assert_eq!(stats.records_written, THREADS * PER_THREAD);
    assert!(
        stats.fsyncs < THREADS * PER_THREAD,
        "group commit shares fsyncs: {stats:?}"
    );
    wal.close().unwrap();

    let (_wal, mut replay) = Wal::open(cfg).unwrap();
    let mut next_sequence: HashMap<u64, u64> = HashMap::new();
    let mut total = 0;
    while let Some(record) = replay.next_record().unwrap() {
        let thread = u64::from_be_bytes(record.data[..8].try_into().unwrap());
        let sequence = u64::from_be_bytes(record.data[8..16].try_into().unwrap());
        let expected = next_sequence.entry(thread).or_insert(0);
        assert_eq!(sequence, *expected, "thread {thread} out of order");
        *expected += 1;
        total += 1;
    }
    assert_eq!(total, THREADS * PER_THREAD);
    assert!(next_sequence.values().all(|&count| count == PER_THREAD));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Kill-style: cut the last segment anywhere; replay yields exactly a
    /// prefix of the acknowledged records and appending works afterwards.
    #[test]
    fn truncated_last_segment_replays_a_prefix(
        count in 1u64..40,
        segment_size in prop_oneof![Just(1u64 << 20), 600u64..3000],
        cut_fraction in 0.0f64..1.0,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), segment_size, FsyncPolicy::Never);
        let (wal, replay) = Wal::open(cfg.clone()).unwrap();
        drop(replay);
        let written = write_acknowledged(&wal, 0..count);
        wal.close().unwrap();

        let last = segment_paths(dir.path()).pop().unwrap();
        let len = fs::metadata(&last).unwrap().len();
        let cut = (len as f64 * cut_fraction) as u64;
        OpenOptions::new().write(true).open(&last).unwrap().set_len(cut).unwrap();

        let (wal, mut replay) = Wal::open(cfg.clone()).unwrap();
        let replayed = segment_records(&replay_all(&mut replay));
        prop_assert!(replayed.len() <= written.len());
        prop_assert_eq!(&replayed[..], &written[..replayed.len()]);
        if let Some(tail) = &replay.stats().corrupt_tail {
            prop_assert_eq!(tail.offset + tail.bytes_dropped, cut);
        }
        drop(replay);

        let more = write_acknowledged(&wal, 1000..1003);
        wal.close().unwrap();
        let (_wal, mut replay) = Wal::open(cfg).unwrap();
        let expected: Vec<_> = replayed.into_iter().chain(more).collect();
        prop_assert_eq!(segment_records(&replay_all(&mut replay)), expected);
        prop_assert!(replay.stats().is_clean());
    }
}
