//! Faults on the durable path: object storage unreachable (then back), a
//! torn WAL tail after SIGKILL, a corrupt chunk object, and a full WAL disk
//! (a small tmpfs mounted by the test; needs root and fails loudly without).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sluice_integration_tests::durable::*;
use sluice_integration_tests::s3::{S3Server, ACCESS_KEY, SECRET_KEY};
use sluice_integration_tests::*;

fn base() -> i64 {
    (now_ns() / SEC - 600) * SEC
}

// ---------------------------------------------------------------------------
// (a) object storage unreachable, then back
// ---------------------------------------------------------------------------

/// S3 endpoint on a loopback port where nothing listens: pushes are still
/// acknowledged, flushes fail and are counted, the data stays queryable from
/// the ingester. Then an S3 server starts on that port and the ingester's own
/// retry (no further POST /flush) stores everything; a querier-only process
/// then reads it all from S3.
#[test]
fn unreachable_object_store_then_recovery_via_retry() {
    let port = free_port();
    assert!(!port_open(port), "port {port} should be closed");
    let storage_yaml = format!(
        "schema_config:\n  configs:\n    - from: \"2020-01-01\"\n      store: tsdb\n      \
         object_store: s3\n      schema: v13\n      index:\n        prefix: index_\n        \
         period: 24h\n\
         storage_config:\n  aws:\n    endpoint: http://127.0.0.1:{port}\n    \
         bucketnames: dur\n    access_key_id: {ACCESS_KEY}\n    secret_access_key: {SECRET_KEY}\n    \
         s3forcepathstyle: true\n    insecure: true\n    region: us-east-1\n"
    );
    let ingester_yaml = "ingester:\n  chunk_idle_period: 1s\n  flush_check_period: 250ms\n  \
                         flush_op_timeout: 2s\n";
    let mut p = SluiceProcess::start(
        SluiceOptions::new().extra_yaml(&format!("{storage_yaml}{ingester_yaml}")),
    );
    let ds = Dataset::new("s3down", 3, 300, base());
    let mut acked = StreamSet::new();
    push_batches(&p, &ds.pushes(0, 300, 60), &mut acked);

    let r = post(&p, "/flush");
    assert_eq!(
        r.status, 204,
        "POST /flush answers 204 even when storage is down"
    );
    wait_metric(
        &p,
        "loki_ingester_chunks_flush_failures",
        Duration::from_secs(15),
        |v| v >= 1.0,
        "flush to an unreachable S3 must be counted as failed",
    );
    assert_eq!(metric(&p, "loki_ingester_chunks_stored"), 0.0);
    // Pushes still work while storage is down.
    let more = Dataset::new("s3down-more", 1, 40, ds.base);
    push_batches(&p, &more.pushes(0, 40, 20), &mut acked);
    // A query while the store is down fails loudly (as Loki's does) instead
    // of silently returning only the ingester's part: 503, naming the store
    // operation that failed. Recorded, not fatal, so the recovery below is
    // checked (and reported) as well.
    let mut f = Failures::new();
    let only_ds: StreamSet = acked
        .iter()
        .filter(|(l, _)| l["job"] == "s3down")
        .map(|(l, e)| (l.clone(), e.clone()))
        .collect();
    let (s, e) = ds.range();
    let (s, e) = (s.to_string(), e.to_string());
    let r = p.query_range(
        &[
            ("query", &ds.selector()),
            ("start", &s),
            ("end", &e),
            ("limit", "5000"),
            ("direction", "forward"),
        ],
        None,
    );
    f.check(
        "query while object storage is unreachable answers 503 naming the store failure",
        r.status == 503 && r.body.contains("index/"),
        format!("got {}: {:?}", r.status, r.body),
    );
    assert!(!only_ds.is_empty());

    // Storage comes back on the same port; the flush loop retries by itself.
    let root = tempfile::Builder::new()
        .prefix("sluice-it-s3-")
        .tempdir()
        .expect("tempdir");
    let server = S3Server::start_on(root.path(), port);
    let bucket = server.create_bucket("dur");
    let failures_then = metric(&p, "loki_ingester_chunks_flush_failures");
    wait_metric(
        &p,
        "loki_ingester_chunks_stored",
        Duration::from_secs(45),
        |v| v >= (ds.streams + more.streams) as f64,
        "chunks stored by the retry/backoff path once S3 is back",
    );
    assert!(
        failures_then >= 1.0,
        "failures counted before recovery: {failures_then}"
    );
    assert!(
        chunk_files(&bucket, "fake").len() >= ds.streams + more.streams,
        "chunk objects in the bucket after recovery"
    );
    let all_sel = r#"{job=~"s3down|s3down-more"}"#;
    let (s0, _) = ds.range();
    let range = (s0, ds.base + 400 * 1_000_000);
    assert_exactly_once(&p, all_sel, range, &acked, "all-in-one after recovery");
    terminate_ok(&mut p);

    let q = SluiceProcess::start(
        SluiceOptions::new()
            .target("querier")
            .extra_yaml(&storage_yaml),
    );
    assert_exactly_once(
        &q,
        all_sel,
        range,
        &acked,
        "querier-only over S3 after recovery",
    );
    f.finish();
}

// ---------------------------------------------------------------------------
// (b) torn WAL tail
// ---------------------------------------------------------------------------

fn last_segment(p: &SluiceProcess) -> PathBuf {
    let dir = p.data_dir().join("wal");
    wal_segments(&dir)
        .pop()
        .unwrap_or_else(|| panic!("no WAL segment in {}", dir.display()))
}

/// Garbage appended after the last complete record, then (after more
/// pushes) the last record cut in half: each restart is ready, replays the
/// valid prefix exactly once, and counts the corruption; the server keeps
/// taking and keeping pushes afterwards.
#[test]
fn torn_wal_tail_replays_valid_prefix_and_counts_corruption() {
    let mut p = SluiceProcess::start_default();
    let ds = Dataset::new("torn", 3, 400, base());
    let mut acked = StreamSet::new();
    let first = ds.pushes(0, 200, 20);
    push_batches(&p, &first, &mut acked);
    kill9(&mut p);

    // 1. Garbage after the last complete record.
    let seg = last_segment(&p);
    let bytes = std::fs::read(&seg).expect("read segment");
    let frames = wal_frames(&bytes);
    assert_eq!(
        frames.len(),
        first.len(),
        "one WAL record per acknowledged push in {}",
        seg.display()
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .expect("open segment");
    f.write_all(&[0xAB; 37]).expect("append garbage");
    drop(f);
    p.restart();
    let corrupt = metric(&p, "loki_ingester_wal_replay_corruptions");
    assert!(
        corrupt >= 1.0,
        "garbage tail must be reported: loki_ingester_wal_replay_corruptions = {corrupt}"
    );
    assert_exactly_once(
        &p,
        &ds.selector(),
        ds.range(),
        &acked,
        "after restart with a garbage WAL tail",
    );

    // 2. More pushes appended after the recovered prefix, then the last
    //    record torn in half.
    let second = ds.pushes(200, 400, 25);
    let mut acked_second = StreamSet::new();
    push_batches(&p, &second, &mut acked_second);
    kill9(&mut p);
    let seg = last_segment(&p);
    let bytes = std::fs::read(&seg).expect("read segment");
    let frames = wal_frames(&bytes);
    let (start, len) = *frames.last().expect("a record");
    assert_eq!(
        start + 8 + len,
        bytes.len(),
        "the garbage must have been cut at the previous open; the segment ends with a record"
    );
    let cut = start + 8 + len / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .and_then(|f| f.set_len(cut as u64))
        .expect("truncate segment");
    p.restart();
    let corrupt = metric(&p, "loki_ingester_wal_replay_corruptions");
    assert!(
        corrupt >= 1.0,
        "torn record must be reported: loki_ingester_wal_replay_corruptions = {corrupt}"
    );
    // Every push but the torn last one.
    let expected = ds.expected(0, 375);
    assert_exactly_once(
        &p,
        &ds.selector(),
        ds.range(),
        &expected,
        "after restart with the last WAL record torn",
    );

    // 3. No crash loop: it stays up, takes pushes, and a clean restart
    //    replays without corruption.
    std::thread::sleep(Duration::from_millis(300));
    assert!(p.try_wait().is_none(), "sluice must stay up after recovery");
    let mut acked = expected;
    push_batches(&p, &ds.pushes(375, 400, 25), &mut acked);
    kill9(&mut p);
    p.restart();
    assert_eq!(
        metric(&p, "loki_ingester_wal_replay_corruptions"),
        0.0,
        "the torn tail was cut at the previous open; this replay is clean"
    );
    assert_exactly_once(
        &p,
        &ds.selector(),
        ds.range(),
        &acked,
        "after a clean restart following recovery",
    );
}

// ---------------------------------------------------------------------------
// (c) corrupt chunk object
// ---------------------------------------------------------------------------

/// One byte flipped in one flushed chunk object: a querier-only process
/// answers 5xx naming the chunk key for any query reading that chunk, and
/// still answers queries for the other stream.
#[test]
fn corrupt_chunk_object_fails_its_queries_naming_the_key() {
    let mut p = SluiceProcess::start_default();
    let ds = Dataset::new("corrupt", 2, 300, base());
    let mut acked = StreamSet::new();
    push_batches(&p, &ds.pushes(0, 300, 100), &mut acked);
    terminate_ok(&mut p);

    let store = p.data_dir().join("chunks");
    let chunks = chunk_files(&store, "fake");
    assert_eq!(
        chunks.len(),
        2,
        "one chunk object per stream expected under {}: {chunks:?}",
        store.display()
    );
    let victim = &chunks[0];
    let mut bytes = std::fs::read(victim).expect("read chunk");
    let i = bytes.len() / 2;
    bytes[i] ^= 0x5A;
    std::fs::write(victim, &bytes).expect("write chunk");
    let key = victim
        .strip_prefix(&store)
        .expect("under store")
        .to_string_lossy()
        .to_string();

    let q = SluiceProcess::start(SluiceOptions::new().target("querier").extra_yaml(&format!(
        "storage_config:\n  filesystem:\n    directory: {}\n",
        store.display()
    )));
    let (start, end) = ds.range();
    let (s, e) = (start.to_string(), end.to_string());
    let run = |query: &str| {
        q.query_range(
            &[
                ("query", query),
                ("start", &s),
                ("end", &e),
                ("limit", "5000"),
                ("direction", "forward"),
            ],
            None,
        )
    };
    let mut bad = None;
    let mut good = None;
    for st in 0..ds.streams {
        let r = run(&ds.stream_selector(st));
        if r.status == 200 {
            good = Some((st, r));
        } else {
            bad = Some((st, r));
        }
    }
    let (bad_stream, r) = bad.unwrap_or_else(|| {
        panic!("a query reading the corrupt chunk {key} must fail, but every stream answered 200")
    });
    assert!(
        (500..600).contains(&r.status),
        "corrupt chunk: expected 5xx, got {} {:?}",
        r.status,
        r.body
    );
    assert!(
        r.body.contains(&key),
        "the error must name the chunk key {key}: {:?}",
        r.body
    );
    let (good_stream, r) = good.expect("the other stream's query must still succeed");
    assert_ne!(bad_stream, good_stream);
    let expected: StreamSet = acked
        .iter()
        .filter(|(l, _)| **l == ds.labels(good_stream))
        .map(|(l, e)| (l.clone(), e.clone()))
        .collect();
    if let Some(d) = diff(&parse_streams(&r.json()), &expected) {
        panic!("the intact stream must be returned whole:\n  {d}");
    }
    // A query over both streams reads the corrupt chunk too.
    let r = run(&ds.selector());
    assert!(
        (500..600).contains(&r.status) && r.body.contains(&key),
        "a query touching the corrupt chunk must fail naming {key}: {} {:?}",
        r.status,
        r.body
    );
}

// ---------------------------------------------------------------------------
// (d) full WAL disk (tmpfs)
// ---------------------------------------------------------------------------

/// A tmpfs mounted for the test; unmounted on drop.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test needs to mount a tmpfs (root): mount failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Fill the filesystem at `dir` with a file until it is full; returns it.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("create filler");
    let block = vec![0x55u8; 4096];
    // Bounded: the tmpfs is small.
    for _ in 0..100_000 {
        if f.write_all(&block).is_err() {
            break;
        }
    }
    for _ in 0..4096 {
        if f.write_all(&[0x55]).is_err() {
            break;
        }
    }
    let _ = f.flush();
    path
}

/// WAL on a small tmpfs: once it is full, pushes answer 5xx (counted), and
/// the refused lines are not readable, now or after SIGKILL and restart;
/// after space is freed pushes are acknowledged again and everything
/// acknowledged (before and after) survives a restart exactly once.
#[test]
fn full_wal_disk_refuses_pushes_and_keeps_nothing_half_written() {
    let work = tempfile::Builder::new()
        .prefix("sluice-it-tmpfs-")
        .tempdir()
        .expect("tempdir");
    let walfs = Tmpfs::mount(&work.path().join("wal"), "2m");
    let mut p = SluiceProcess::start(SluiceOptions::new().extra_yaml(&format!(
        "ingester:\n  wal:\n    dir: {}\n",
        walfs.path.display()
    )));
    let ds = Dataset::new("diskfull", 2, 600, base());
    let mut acked = StreamSet::new();
    push_batches(&p, &ds.pushes(0, 100, 50), &mut acked);

    let filler = fill(&walfs.path);
    // Push until refused (bounded); every answer is 204 or 5xx.
    let batches = ds.pushes(100, 600, 50);
    let mut refused = Vec::new();
    let mut next = 0;
    for (n, batch) in batches.iter().enumerate() {
        let r = p.push_proto(batch, None);
        match r.status {
            204 => {
                let mut one = StreamSet::new();
                for s in batch {
                    one.insert(parse_label_text(&s.labels), s.entries.clone());
                }
                for (l, e) in one {
                    acked.entry(l).or_default().extend(e);
                }
            }
            500..=599 => {
                refused.push((n, r.status, r.body.clone()));
                next = n + 1;
                break;
            }
            other => panic!("push on a full WAL disk: unexpected {other} {:?}", r.body),
        }
    }
    let (refused_n, status, body) = refused
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("no push was refused with the WAL disk full"));
    assert!(
        (500..600).contains(&status),
        "full disk push must be 5xx: {status} {body:?}"
    );
    eprintln!("push {refused_n} on the full WAL disk: {status} {body:?}");
    assert!(
        metric(&p, "loki_ingester_wal_disk_full_failures") >= 1.0,
        "loki_ingester_wal_disk_full_failures must count the refused push"
    );
    for v in acked.values_mut() {
        v.sort();
    }
    // The refused lines are not readable; the acknowledged ones are.
    assert_exactly_once(
        &p,
        &ds.selector(),
        ds.range(),
        &acked,
        &format!("after push {refused_n} was refused ({status} {body:?})"),
    );

    // Free space: pushes are acknowledged again.
    std::fs::remove_file(&filler).expect("remove filler");
    let mut recovered = false;
    for batch in &batches[next..next + 2] {
        let r = p.push_proto(batch, None);
        assert_eq!(
            (r.status, r.body.as_str()),
            (204, ""),
            "push after space was freed must be acknowledged"
        );
        for s in batch {
            acked
                .entry(parse_label_text(&s.labels))
                .or_default()
                .extend(s.entries.iter().cloned());
        }
        recovered = true;
    }
    assert!(recovered);
    for v in acked.values_mut() {
        v.sort();
    }
    assert_exactly_once(
        &p,
        &ds.selector(),
        ds.range(),
        &acked,
        "after space was freed",
    );

    // Crash and replay: exactly what was acknowledged, nothing of the
    // refused push, and nothing acknowledged after it lost.
    kill9(&mut p);
    p.restart();
    assert_exactly_once(
        &p,
        &ds.selector(),
        ds.range(),
        &acked,
        "after SIGKILL and restart following a full WAL disk",
    );
    kill9(&mut p);
    drop(p);
    drop(walfs);
}

/// A corrupt checkpoint whose segments are gone cannot be replayed. Sluice
/// keeps running, as Loki does on WAL corruption, rather than crash-loop
/// under a supervisor: it sets the file aside as `*.corrupt`, logs an error
/// naming it, counts the corruption, and starts with what remains. It never
/// returns a line twice or a line never pushed.
#[test]
fn corrupt_wal_checkpoint_is_set_aside_and_startup_continues() {
    let mut p = SluiceProcess::start(
        SluiceOptions::new().extra_yaml("ingester:\n  wal:\n    checkpoint_duration: 1s\n"),
    );
    let ds = Dataset::new("ckcorrupt", 2, 300, base());
    let mut acked = StreamSet::new();
    push_batches(&p, &ds.pushes(0, 300, 100), &mut acked);
    wait_metric(
        &p,
        "loki_ingester_checkpoint_creations",
        Duration::from_secs(10),
        |v| v >= 1.0,
        "a checkpoint",
    );
    kill9(&mut p);
    let wal = p.data_dir().join("wal");
    let mut cps: Vec<PathBuf> = std::fs::read_dir(&wal)
        .expect("wal dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            n.starts_with("checkpoint.") && !n.ends_with(".tmp")
        })
        .collect();
    cps.sort();
    let cp = cps
        .pop()
        .unwrap_or_else(|| panic!("no checkpoint file in {}", wal.display()));
    let mut bytes = std::fs::read(&cp).expect("read checkpoint");
    assert!(
        bytes.len() > 64,
        "checkpoint holds records: {} bytes",
        bytes.len()
    );
    let i = bytes.len() / 2;
    bytes[i] ^= 0x5A;
    std::fs::write(&cp, &bytes).expect("write checkpoint");

    let log_len = p.stderr_text().len();
    p.restart();
    let log = p.stderr_text()[log_len..].to_string();
    let cp_s = cp.display().to_string();
    assert!(
        log.contains(&cp_s) && log.contains("corrupt"),
        "the error must name {cp_s}:\n{log}"
    );
    let mut aside = cp.clone().into_os_string();
    aside.push(".corrupt");
    assert!(
        PathBuf::from(&aside).exists() && !cp.exists(),
        "the corrupt checkpoint is kept aside for inspection"
    );
    assert!(metric(&p, "loki_ingester_wal_replay_corruptions") >= 1.0);
    let got = query_dir(&p, &ds.selector(), ds.range(), "forward", MAX_LIMIT);
    for (l, entries) in &got {
        let known = acked.get(l).map(Vec::as_slice).unwrap_or(&[]);
        let unique: std::collections::BTreeSet<_> = entries.iter().collect();
        assert_eq!(unique.len(), entries.len(), "{l:?}: duplicated lines");
        assert!(
            entries.iter().all(|e| known.contains(e)),
            "{l:?} returned lines that were never pushed"
        );
    }
    // Pushes work after recovery.
    let more = Dataset::new("ckcorrupt-after", 1, 10, base());
    push_batches(&p, &more.pushes(0, 10, 10), &mut acked);
}
