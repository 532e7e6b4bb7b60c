//! Live tail, index stats and volumes in distributed mode, through a
//! separate query frontend: three ingesters on a memcached ring hold every
//! stream (replication factor 3); the querier receives each entry three
//! times and must send it once, and count each chunk once. The frontend
//! proxies the tail's WebSocket to the querier (`frontend.tail_proxy_url`)
//! and queues the other requests for the querier's worker.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sluice_integration_tests::cluster::{
    start_node, start_read_path, store_dir, wait_ring_active, ClusterConfig, Memcached,
};
use sluice_integration_tests::live_tail::TailClient;
use sluice_integration_tests::{now_ns, SluiceProcess, Stream, SEC};

const INGESTERS: [&str; 3] = ["ingester-0", "ingester-1", "ingester-2"];
const RING_TIMEOUT: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(30);

/// Pushes until acknowledged (as promtail retries 5xx).
fn push(distributor: &SluiceProcess, streams: &[Stream]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let resp = distributor.push_proto(streams, None);
        if resp.status == 204 {
            return;
        }
        assert!(resp.status >= 500, "{} {}", resp.status, resp.body);
        assert!(
            Instant::now() < deadline,
            "push never acknowledged: {}",
            resp.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `batch` lines per stream `s0`/`s1`, timestamps from `base`.
fn batch(base: i64, round: usize, per_stream: usize) -> Vec<Stream> {
    (0..2)
        .map(|s| {
            Stream::new(
                &format!("{{job=\"rf3tail\", stream=\"s{s}\"}}"),
                (0..per_stream).map(move |i| {
                    (
                        base + (round * per_stream + i) as i64 * 1_000,
                        format!("s{s} round {round} line {i}"),
                    )
                }),
            )
        })
        .collect()
}

#[test]
fn three_replicas_are_tailed_and_counted_once() {
    let root = tempfile::tempdir().expect("tempdir");
    let memcached = Memcached::start();
    let config = ClusterConfig {
        memcached: memcached.addr(),
        store_dir: store_dir(root.path()),
        extra_yaml: String::new(),
    };
    let mut ingesters: Vec<SluiceProcess> = INGESTERS
        .iter()
        .map(|id| start_node(&config, "ingester", id))
        .collect();
    let distributor = start_node(&config, "distributor", "distributor-0");
    // The frontend proxies tails to the querier's HTTP port; the querier
    // pulls every other request from the frontend.
    let (frontend, querier) = start_read_path(&config);
    wait_ring_active(&distributor, &INGESTERS, RING_TIMEOUT);
    wait_ring_active(&querier, &INGESTERS, RING_TIMEOUT);

    // The querier's refusal of a bad tail comes back through the proxy.
    let refused = frontend.get("/loki/api/v1/tail", &[("query", "{job=")], None);
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("parse error"), "{}", refused.body);

    // A marker before the tail starts comes back once, as the backfill.
    let marker_at = now_ns() - SEC;
    push(
        &distributor,
        &[Stream::new(
            "{job=\"rf3tail\", stream=\"s0\"}",
            [(marker_at, "marker")],
        )],
    );
    let start = (marker_at - SEC).to_string();
    let mut client = TailClient::connect(
        &frontend,
        &[
            ("query", "{job=\"rf3tail\"}"),
            ("start", &start),
            ("delay_for", "2"),
        ],
    );
    let backfill = client.read_until(WAIT, |entries| !entries.is_empty());
    assert_eq!(backfill.len(), 1, "{backfill:?}");
    assert_eq!(backfill[0].2, "marker");

    // Every line pushed now comes once, in timestamp order, although all
    // three ingesters send it.
    let per_stream = 50;
    let base = now_ns();
    let mut expected = 1;
    for round in 0..3 {
        push(&distributor, &batch(base, round, per_stream));
        expected += 2 * per_stream;
    }
    client.read_until(WAIT, |entries| entries.len() >= expected);
    // Copies arriving late would show up within a few seconds.
    let entries = client.read_until(Duration::from_secs(3), |_| false);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, _, line) in &entries {
        *counts.entry(line.as_str()).or_default() += 1;
    }
    let duplicated: Vec<_> = counts.iter().filter(|(_, &count)| count > 1).collect();
    assert!(
        duplicated.is_empty(),
        "{} lines sent more than once, e.g. {:?}",
        duplicated.len(),
        &duplicated[..duplicated.len().min(3)]
    );
    assert_eq!(entries.len(), expected, "every line arrived");
    let timestamps: Vec<i64> = entries[1..].iter().map(|(_, ts, _)| *ts).collect();
    let mut sorted = timestamps.clone();
    sorted.sort_unstable();
    assert_eq!(
        timestamps, sorted,
        "delay_for=2 puts replicas' entries in order"
    );

    // Index stats and volume count each replica's copy of a chunk once.
    let (from, to) = ((base - 600 * SEC).to_string(), (now_ns() + SEC).to_string());
    let total_entries = 2 * 3 * per_stream as u64 + 1;
    let deadline = Instant::now() + WAIT;
    let stats = loop {
        let stats = frontend
            .get(
                "/loki/api/v1/index/stats",
                &[
                    ("query", "{job=\"rf3tail\"}"),
                    ("start", &from),
                    ("end", &to),
                ],
                None,
            )
            .ok_json();
        // The third replica may still be applying the last push.
        if stats["entries"] == total_entries || Instant::now() >= deadline {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(stats["streams"], 2, "{stats}");
    assert_eq!(stats["chunks"], 2, "{stats}");
    assert_eq!(stats["entries"], total_entries, "{stats}");
    let volume = frontend
        .get(
            "/loki/api/v1/index/volume",
            &[
                ("query", "{job=\"rf3tail\"}"),
                ("start", &from),
                ("end", &to),
            ],
            None,
        )
        .ok_json();
    assert_eq!(
        volume["data"]["result"][0]["value"][1].as_str().unwrap(),
        stats["bytes"].to_string()
    );

    // One ingester dies: the other replicas keep the tail going.
    ingesters[1].kill();
    let before = entries.len();
    for round in 3..5 {
        push(&distributor, &batch(base, round, per_stream));
    }
    client.read_until(WAIT, |entries| entries.len() >= before + 2 * 2 * per_stream);
    let entries = client.read_until(Duration::from_secs(3), |_| false);
    assert_eq!(
        entries.len(),
        before + 2 * 2 * per_stream,
        "no line lost or repeated"
    );
    assert!(client.closed.is_none(), "{:?}", client.closed);
    assert_eq!(client.dropped(), 0);
    client.close();
}
