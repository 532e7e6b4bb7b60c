//! Object storage over the S3 protocol: an in-process S3 server (crates.io
//! `s3s` + `s3s-fs` 0.14, SigV4 auth with fixed keys, serving a temp dir on
//! a loopback port) holds the chunks and index; the all-in-one flushes to
//! it and a querier-only process reads everything back. Both the
//! `storage_config.aws` key form and Loki's `s3://KEY:SECRET@host:port/bucket`
//! URL form are exercised.

use std::time::Duration;

use sluice_integration_tests::durable::*;
use sluice_integration_tests::s3::{list_files, S3Server, ACCESS_KEY, SECRET_KEY};
use sluice_integration_tests::*;

const BUCKET: &str = "sluice-chunks";

fn base() -> i64 {
    (now_ns() / SEC - 600) * SEC
}

/// A schema period storing in S3 from 2020 on.
const S3_SCHEMA: &str = "schema_config:\n  configs:\n    - from: \"2020-01-01\"\n      \
    store: tsdb\n      object_store: s3\n      schema: v13\n      index:\n        \
    prefix: index_\n        period: 24h\n";

/// `storage_config.aws` with separate keys.
fn aws_keys_yaml(port: u16) -> String {
    format!(
        "{S3_SCHEMA}storage_config:\n  aws:\n    endpoint: http://127.0.0.1:{port}\n    \
         bucketnames: {BUCKET}\n    access_key_id: {ACCESS_KEY}\n    \
         secret_access_key: {SECRET_KEY}\n    s3forcepathstyle: true\n    insecure: true\n    \
         region: us-east-1\n  index_shipper:\n    cache_location: index-cache-s3\n"
    )
}

/// `storage_config.aws.s3` in Loki's URL form.
fn aws_url_yaml(port: u16) -> String {
    format!(
        "{S3_SCHEMA}storage_config:\n  aws:\n    \
         s3: s3://{ACCESS_KEY}:{SECRET_KEY}@127.0.0.1:{port}/{BUCKET}\n    \
         s3forcepathstyle: true\n    insecure: true\n  index_shipper:\n    \
         cache_location: index-cache-s3\n"
    )
}

fn s3_root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sluice-it-s3-")
        .tempdir()
        .expect("s3 root tempdir")
}

/// Push, flush (POST /flush or only SIGTERM), stop; then a querier-only
/// process with the same storage config returns every line exactly once,
/// and the objects are in the bucket.
fn roundtrip(storage_yaml: &str, bucket_dir: &std::path::Path, job: &str, use_flush: bool) {
    let mut p = SluiceProcess::start(SluiceOptions::new().extra_yaml(storage_yaml));
    let ds = Dataset::new(job, 3, 500, base());
    let mut acked = StreamSet::new();
    push_batches(&p, &ds.pushes(0, 500, 50), &mut acked);
    if use_flush {
        let r = post(&p, "/flush");
        assert_eq!(r.status, 204, "POST /flush: {} {:?}", r.status, r.body);
        wait_metric(
            &p,
            "loki_ingester_chunks_stored",
            Duration::from_secs(20),
            |v| v >= ds.streams as f64,
            "chunks stored in S3 after POST /flush",
        );
        assert_exactly_once(
            &p,
            &ds.selector(),
            ds.range(),
            &acked,
            "all-in-one after flush",
        );
    }
    terminate_ok(&mut p);
    assert_eq!(
        flush_failure_log_lines(&p),
        "",
        "no flush failure may be logged"
    );

    let objects = list_files(bucket_dir);
    let chunks = chunk_files(bucket_dir, "fake");
    assert!(
        chunks.len() >= ds.streams,
        "at least one chunk object per stream in bucket {}: {objects:?}\n\
         every object under the S3 root: {:?}\n--- sluice stderr (tail) ---\n{}",
        bucket_dir.display(),
        list_files(bucket_dir.parent().expect("bucket has a parent")),
        tail(&p.stderr_text(), 4000)
    );
    // Nothing outside the configured bucket (s3s-fs keeps its own metadata
    // in dot-files at the root; every other top-level entry is a bucket).
    let root_entries: Vec<String> = std::fs::read_dir(bucket_dir.parent().expect("parent"))
        .expect("read S3 root")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(
        root_entries,
        vec![BUCKET.to_string()],
        "objects must only be written into bucket {BUCKET}"
    );
    assert!(
        objects
            .iter()
            .any(|o| o.starts_with("index/") && o.ends_with(".idx")),
        "an index file should be shipped to the bucket: {objects:?}"
    );

    let q = SluiceProcess::start(
        SluiceOptions::new()
            .target("querier")
            .extra_yaml(storage_yaml),
    );
    assert_exactly_once(
        &q,
        &ds.selector(),
        ds.range(),
        &acked,
        "querier-only over S3",
    );
    let (s, e) = ds.range();
    let (s, e) = (s.to_string(), e.to_string());
    let r = q.label_values("stream", &[("start", &s), ("end", &e)], None);
    assert_eq!(
        r.ok_json(),
        json!({"status": "success", "data": ["s0", "s1", "s2"]}),
        "label values from the S3 index"
    );
}

/// Lines of the process's stderr that report a failed flush or upload.
fn flush_failure_log_lines(p: &SluiceProcess) -> String {
    p.stderr_text()
        .lines()
        .filter(|l| l.contains("flush failed") || l.contains("upload failed"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn s3_keys_config_flush_then_querier_only_reads_everything() {
    let root = s3_root();
    let server = S3Server::start(root.path());
    let bucket = server.create_bucket(BUCKET);
    roundtrip(&aws_keys_yaml(server.port()), &bucket, "s3keys", true);
}

#[test]
fn s3_url_form_graceful_shutdown_then_querier_only_reads_everything() {
    let root = s3_root();
    let server = S3Server::start(root.path());
    let bucket = server.create_bucket(BUCKET);
    roundtrip(&aws_url_yaml(server.port()), &bucket, "s3url", false);
}

/// Wrong credentials must not be acknowledged as stored: the flush fails
/// (counted) and nothing lands in the bucket.
#[test]
fn s3_wrong_secret_flush_fails_and_is_counted() {
    let root = s3_root();
    let server = S3Server::start(root.path());
    let bucket = server.create_bucket(BUCKET);
    let yaml = aws_keys_yaml(server.port()).replace(SECRET_KEY, "not-the-secret")
        + "ingester:\n  flush_op_timeout: 5s\n";
    let p = SluiceProcess::start(SluiceOptions::new().extra_yaml(&yaml));
    let ds = Dataset::new("s3bad", 2, 50, base());
    let mut acked = StreamSet::new();
    push_batches(&p, &ds.pushes(0, 50, 50), &mut acked);
    let r = post(&p, "/flush");
    assert_eq!(r.status, 204);
    wait_metric(
        &p,
        "loki_ingester_chunks_flush_failures",
        Duration::from_secs(15),
        |v| v >= 1.0,
        "flush with a wrong secret key must fail",
    );
    assert_eq!(metric(&p, "loki_ingester_chunks_stored"), 0.0);
    assert!(
        chunk_files(&bucket, "fake").is_empty(),
        "nothing may be stored with wrong credentials"
    );
}
