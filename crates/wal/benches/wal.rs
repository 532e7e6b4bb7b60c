//! Append throughput of the WAL.
//!
//! Compares group commit under `FsyncPolicy::Always` with 1, 8 and 32
//! concurrent submitters against `FsyncPolicy::Never`. Each submitter behaves
//! like an ingester push: it submits one 64 KiB record (a typical push batch)
//! and waits for its ticket before submitting the next, so with more
//! submitters more records share each fsync. Throughput is in payload bytes.
//! Old segments are removed with an empty checkpoint between measurements.
//!
//! Run: `cargo bench -p sluice-wal --bench wal`

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluice_wal::{FsyncPolicy, Wal, WalConfig};

const RECORD_SIZE: usize = 64 * 1024;

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal_append_64KiB");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let cases = [
        (FsyncPolicy::Always, 1usize),
        (FsyncPolicy::Always, 8),
        (FsyncPolicy::Always, 32),
        (FsyncPolicy::Never, 1),
        (FsyncPolicy::Never, 8),
    ];
    for (fsync, submitters) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = WalConfig {
            dir: dir.path().to_path_buf(),
            segment_size: 128 * 1024 * 1024,
            fsync,
        };
        let (wal, replay) = Wal::open(config).expect("open wal");
        drop(replay);
        let record: Arc<Vec<u8>> = Arc::new((0..RECORD_SIZE).map(|i| (i % 251) as u8).collect());
        group.throughput(Throughput::Bytes((RECORD_SIZE * submitters) as u64));
        let name = format!("{fsync:?}");
        group.bench_with_input(
            BenchmarkId::new(name, submitters),
            &submitters,
            |b, &submitters| {
                b.iter_custom(|iters| {
                    wal.checkpoint(|_| Ok(())).expect("checkpoint");
                    let started = Instant::now();
                    std::thread::scope(|scope| {
                        for _ in 0..submitters {
                            let wal = &wal;
                            let record = &record;
                            scope.spawn(move || {
                                for _ in 0..iters {
                                    let ticket = wal.submit(record.to_vec()).expect("submit");
                                    ticket.wait().expect("ticket");
                                }
                            });
                        }
                    });
                    started.elapsed()
                });
            },
        );
        let stats = wal.stats();
        eprintln!(
            "{fsync:?}/{submitters}: {} records, {} fsyncs, {:.1} records per fsync",
            stats.records_written,
            stats.fsyncs,
            stats.records_written as f64 / stats.fsyncs.max(1) as f64
        );
        wal.close().expect("close wal");
    }
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
