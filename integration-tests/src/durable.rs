//! Helpers for the durability tests: deterministic data sets pushed in
//! batches, exact-once read-back checks in both directions, metric polling
//! and a look at the on-disk WAL and chunk store.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{labels, parse_streams, prom, Labels, SluiceProcess, Stream, StreamSet, SEC};

/// Most entries one log query may return (the default
/// `max_entries_limit_per_query`); data sets checked in one query stay below.
pub const MAX_LIMIT: usize = 5000;

/// A deterministic set of streams `{job="<job>", stream="s<i>"}` with
/// `per_stream` lines each, 1 ms apart (stream `i` offset by `i` µs so no two
/// entries share a timestamp), starting at `base` ns.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The `job` label value shared by every stream.
    pub job: String,
    /// Number of streams.
    pub streams: usize,
    /// Lines per stream.
    pub per_stream: usize,
    /// First timestamp, ns.
    pub base: i64,
}

impl Dataset {
    /// A new data set.
    pub fn new(job: &str, streams: usize, per_stream: usize, base: i64) -> Dataset {
        Dataset {
            job: job.to_string(),
            streams,
            per_stream,
            base,
        }
    }

    /// Raw label text of stream `s` as pushed.
    pub fn labels_text(&self, s: usize) -> String {
        format!(r#"{{job="{}", stream="s{s}"}}"#, self.job)
    }

    /// Sorted label set of stream `s` as returned by queries.
    pub fn labels(&self, s: usize) -> Labels {
        labels(&[("job", &self.job), ("stream", &format!("s{s}"))])
    }

    /// Entry `i` of stream `s`.
    pub fn entry(&self, s: usize, i: usize) -> (i64, String) {
        (
            self.base + i as i64 * 1_000_000 + s as i64 * 1_000,
            format!("{} s{s} line {i:06} payload-{:x}", self.job, i * 7919 + s),
        )
    }

    /// Selector matching every stream of the set.
    pub fn selector(&self) -> String {
        format!(r#"{{job="{}"}}"#, self.job)
    }

    /// Selector matching stream `s` only.
    pub fn stream_selector(&self, s: usize) -> String {
        format!(r#"{{job="{}", stream="s{s}"}}"#, self.job)
    }

    /// Push bodies: lines `[from, to)` of every stream, `per_push` lines per
    /// stream in each push (so each push carries every stream).
    pub fn pushes(&self, from: usize, to: usize, per_push: usize) -> Vec<Vec<Stream>> {
        assert!(per_push > 0);
        let mut out = Vec::new();
        let mut start = from;
        while start < to {
            let end = (start + per_push).min(to);
            out.push(
                (0..self.streams)
                    .map(|s| {
                        Stream::new(&self.labels_text(s), (start..end).map(|i| self.entry(s, i)))
                    })
                    .collect(),
            );
            start = end;
        }
        out
    }

    /// Expected result for lines `[from, to)` of every stream, forward order.
    pub fn expected(&self, from: usize, to: usize) -> StreamSet {
        (0..self.streams)
            .map(|s| {
                (
                    self.labels(s),
                    (from..to).map(|i| self.entry(s, i)).collect(),
                )
            })
            .collect()
    }

    /// A query range covering every entry: `[base - 1s, last + 1s)`.
    pub fn range(&self) -> (i64, i64) {
        (
            self.base - SEC,
            self.base + self.per_stream as i64 * 1_000_000 + SEC,
        )
    }
}

/// Push every batch with protobuf (via `loki-api`), asserting each is
/// acknowledged with 204; adds the acknowledged entries to `acked`.
pub fn push_batches(p: &SluiceProcess, batches: &[Vec<Stream>], acked: &mut StreamSet) {
    for (n, batch) in batches.iter().enumerate() {
        let r = p.push_proto(batch, None);
        assert_eq!(
            (r.status, r.body.as_str()),
            (204, ""),
            "push {n} of {} should be acknowledged with 204",
            batches.len()
        );
        for stream in batch {
            let lbls = parse_label_text(&stream.labels);
            acked
                .entry(lbls)
                .or_default()
                .extend(stream.entries.iter().cloned());
        }
    }
    for entries in acked.values_mut() {
        entries.sort();
    }
}

/// Parse `{a="1", b="2"}` (no escapes) into sorted labels.
pub fn parse_label_text(text: &str) -> Labels {
    text.trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split(',')
        .filter(|kv| !kv.trim().is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("label pair");
            (k.trim().to_string(), v.trim().trim_matches('"').to_string())
        })
        .collect()
}

/// `query_range` with explicit direction and limit; asserts 200 and returns
/// the parsed streams.
pub fn query_dir(
    p: &SluiceProcess,
    query: &str,
    (start, end): (i64, i64),
    direction: &str,
    limit: usize,
) -> StreamSet {
    let (s, e, l) = (start.to_string(), end.to_string(), limit.to_string());
    let r = p.query_range(
        &[
            ("query", query),
            ("start", &s),
            ("end", &e),
            ("limit", &l),
            ("direction", direction),
        ],
        None,
    );
    assert_eq!(
        r.status,
        200,
        "query_range {query} {direction} limit {limit}: {} {}\n--- sluice stderr (tail) ---\n{}",
        r.status,
        r.body,
        crate::tail(&p.stderr_text(), 3000)
    );
    parse_streams(&r.json())
}

/// Describe how `got` differs from `expected` (counts, missing, extra,
/// duplicated entries per stream), or `None` when they are equal.
pub fn diff(got: &StreamSet, expected: &StreamSet) -> Option<String> {
    if got == expected {
        return None;
    }
    let mut out = Vec::new();
    let all: std::collections::BTreeSet<&Labels> = got.keys().chain(expected.keys()).collect();
    for l in all {
        let g = got.get(l).map(Vec::as_slice).unwrap_or(&[]);
        let e = expected.get(l).map(Vec::as_slice).unwrap_or(&[]);
        if g == e {
            continue;
        }
        let gs: std::collections::BTreeSet<&(i64, String)> = g.iter().collect();
        let es: std::collections::BTreeSet<&(i64, String)> = e.iter().collect();
        let missing: Vec<_> = es.difference(&gs).take(3).collect();
        let extra: Vec<_> = gs.difference(&es).take(3).collect();
        let n_missing = es.difference(&gs).count();
        let n_extra = gs.difference(&es).count();
        let dups = g.len() - gs.len();
        out.push(format!(
            "stream {l:?}: got {} entries, expected {}; missing {n_missing} (e.g. {missing:?}), \
             unexpected {n_extra} (e.g. {extra:?}), duplicated {dups}{}",
            g.len(),
            e.len(),
            if n_missing == 0 && n_extra == 0 && dups == 0 {
                " (same set, different order)"
            } else {
                ""
            }
        ));
    }
    Some(out.join("\n  "))
}

/// Assert that `query` over `range` returns exactly `expected` (forward
/// order given) in both directions, with a limit just above the total.
pub fn assert_exactly_once(
    p: &SluiceProcess,
    query: &str,
    range: (i64, i64),
    expected: &StreamSet,
    what: &str,
) {
    let total: usize = expected.values().map(Vec::len).sum();
    assert!(total < MAX_LIMIT, "data set too big for one query: {total}");
    let forward = query_dir(p, query, range, "forward", MAX_LIMIT);
    if let Some(d) = diff(&forward, expected) {
        panic!("{what}: forward query {query} differs from the acknowledged lines:\n  {d}");
    }
    let backward = query_dir(p, query, range, "backward", MAX_LIMIT);
    let expected_back: StreamSet = expected
        .iter()
        .map(|(l, e)| (l.clone(), e.iter().rev().cloned().collect()))
        .collect();
    if let Some(d) = diff(&backward, &expected_back) {
        panic!("{what}: backward query {query} differs from the acknowledged lines:\n  {d}");
    }
}

/// Sum of every sample of a counter (all label sets); `name` without the
/// `_total` suffix is tried with it too. 0 when absent.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    let with_total = format!("{name}_total");
    prom::parse(text)
        .into_iter()
        .filter(|s| s.name == name || s.name == with_total)
        .map(|s| s.value)
        .sum()
}

/// Poll `/metrics` every 50 ms until `metric_sum(name)` satisfies `ok`, at
/// most `timeout`; returns the last value, or panics with it and the stderr
/// tail.
pub fn wait_metric(
    p: &SluiceProcess,
    name: &str,
    timeout: Duration,
    ok: impl Fn(f64) -> bool,
    what: &str,
) -> f64 {
    let deadline = Instant::now() + timeout;
    loop {
        let v = metric_sum(&p.metrics_text(), name);
        if ok(v) {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "{what}: {name} = {v} after {timeout:?}\n--- sluice stderr (tail) ---\n{}",
                crate::tail(&p.stderr_text(), 4000)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Current value of a counter (sum over label sets).
pub fn metric(p: &SluiceProcess, name: &str) -> f64 {
    metric_sum(&p.metrics_text(), name)
}

/// `POST <path>` on the process; returns the response.
pub fn post(p: &SluiceProcess, path: &str) -> crate::Resp {
    p.send(p.client().post(format!("{}{}", p.http_url(), path)))
}

/// SIGKILL the process and reap it (bounded).
pub fn kill9(p: &mut SluiceProcess) {
    p.signal(nix::sys::signal::Signal::SIGKILL);
    assert!(
        p.wait_exit(Duration::from_secs(10)).is_some(),
        "process did not die after SIGKILL"
    );
}

/// SIGTERM the process and assert a clean exit (status 0).
pub fn terminate_ok(p: &mut SluiceProcess) {
    let status = p.terminate();
    assert!(
        status.success(),
        "sluice should exit 0 after SIGTERM, got {status}\n--- stderr (tail) ---\n{}",
        crate::tail(&p.stderr_text(), 4000)
    );
}

/// WAL segment files (names of 8+ digits) in `dir`, ascending.
pub fn wal_segments(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    if name.len() >= 8 && name.bytes().all(|b| b.is_ascii_digit()) {
                        name.parse().ok().map(|n| (n, e.path()))
                    } else {
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.into_iter().map(|(_, p)| p).collect()
}

/// Byte offsets of the record frames of a WAL segment file (docs/formats.md:
/// 8-byte header, then `len u32 BE`, `crc u32 BE`, payload): `(start, len)`
/// of each complete frame.
pub fn wal_frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut off = 8;
    while off + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[off..off + 4].try_into().expect("4 bytes")) as usize;
        if len == 0 || off + 8 + len > bytes.len() {
            break;
        }
        out.push((off, len));
        off += 8 + len;
    }
    out
}

/// Chunk object files under a store root: paths matching
/// `<tenant>/chunks/<period>/<fingerprint>/<from>:<through>:<crc>`.
pub fn chunk_files(root: &Path, tenant: &str) -> Vec<PathBuf> {
    crate::s3::list_files(&root.join(tenant).join("chunks"))
        .into_iter()
        .filter(|rel| rel.split('/').count() == 3 && rel.matches(':').count() == 2)
        .map(|rel| root.join(tenant).join("chunks").join(rel))
        .collect()
}
