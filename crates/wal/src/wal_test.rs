//! Write-failure tests: they need the test-only fault injection in
//! `segment::failpoint`, so they live inside the crate.

use std::io::ErrorKind;

use crate::segment::failpoint::{self, Fault};
use crate::{FsyncPolicy, Wal, WalConfig, WalError};

fn open(dir: &std::path::Path) -> Wal {
    let (wal, replay) = Wal::open(WalConfig {
        dir: dir.to_path_buf(),
        segment_size: 1 << 20,
        fsync: FsyncPolicy::Always,
    })
    .unwrap();
    drop(replay);
    wal
}

fn replay_all(dir: &std::path::Path) -> (Vec<Vec<u8>>, crate::ReplayStats) {
    let (_wal, mut replay) = Wal::open(WalConfig {
        dir: dir.to_path_buf(),
        segment_size: 1 << 20,
        fsync: FsyncPolicy::Always,
    })
    .unwrap();
    let mut records = Vec::new();
    while let Some(record) = replay.next_record().unwrap() {
        records.push(record.data.to_vec());
    }
    (records, replay.stats().clone())
}

fn assert_no_space(result: Result<(), WalError>) {
    match result {
        Err(WalError::Io { path, source }) => {
            assert_eq!(source.kind(), ErrorKind::StorageFull);
            assert!(path.ends_with("00000000"));
        }
        other => panic!("expected an i/o error, got {other:?}"),
    }
}

fn check_recovers_from(fault: Fault) {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path());
    wal.submit(b"before".to_vec()).unwrap().wait().unwrap();

    failpoint::set(dir.path(), Some(fault));
    let tickets: Vec<_> = (0..10).map(|i| wal.submit(vec![i; 100]).unwrap()).collect();
    for ticket in tickets {
        assert_no_space(ticket.wait());
    }
    assert!(wal.stats().write_errors >= 1);
    failpoint::set(dir.path(), None);

    // The disk recovered: the same WAL accepts writes again.
    wal.submit(b"after".to_vec()).unwrap().wait().unwrap();
    wal.close().unwrap();

    let (records, stats) = replay_all(dir.path());
    assert_eq!(records, vec![b"before".to_vec(), b"after".to_vec()]);
    assert!(stats.is_clean(), "no half-written frame left: {stats:?}");
}

#[test]
fn failed_write_fails_the_batch_and_recovers() {
    check_recovers_from(Fault::Write);
}

#[test]
fn failed_fsync_fails_the_batch_and_recovers() {
    check_recovers_from(Fault::Sync);
}

#[test]
fn failed_write_fails_a_pending_checkpoint_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path());
    failpoint::set(dir.path(), Some(Fault::Sync));
    let ticket = wal.submit(b"lost".to_vec()).unwrap();
    let checkpoint = wal.checkpoint(|writer| writer.write(b"snapshot"));
    assert!(ticket.wait().is_err());
    assert!(checkpoint.is_err());
    failpoint::set(dir.path(), None);
    wal.checkpoint(|writer| writer.write(b"snapshot")).unwrap();
    wal.close().unwrap();
    let (records, _) = replay_all(dir.path());
    assert_eq!(records, vec![b"snapshot".to_vec()]);
}
