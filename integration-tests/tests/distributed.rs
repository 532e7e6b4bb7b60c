//! Distributed mode: separate distributor, ingester and querier processes
//! on a ring kept in a real memcached, replication factor 3.
//!
//! Every push the client saw acknowledged must be readable exactly once
//! through the querier, whatever happens to one ingester (SIGKILL, a
//! rolling restart) or to memcached.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sluice_integration_tests::cluster::{
    ring_states, start_node, store_dir, wait_ring_active, ClusterConfig, Memcached,
};
use sluice_integration_tests::durable::{diff, query_dir, Dataset};
use sluice_integration_tests::{now_ns, SluiceProcess, Stream, StreamSet, SEC};

const INGESTERS: [&str; 3] = ["ingester-0", "ingester-1", "ingester-2"];
const RING_TIMEOUT: Duration = Duration::from_secs(30);

struct Cluster {
    config: ClusterConfig,
    memcached: Memcached,
    ingesters: Vec<SluiceProcess>,
    _root: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let root = tempfile::tempdir().expect("tempdir");
        let memcached = Memcached::start();
        let config = ClusterConfig {
            memcached: memcached.addr(),
            store_dir: store_dir(root.path()),
            extra_yaml: String::new(),
        };
        let ingesters = INGESTERS
            .iter()
            .map(|id| start_node(&config, "ingester", id))
            .collect();
        Cluster {
            config,
            memcached,
            ingesters,
            _root: root,
        }
    }

    fn node(&self, target: &str, id: &str) -> SluiceProcess {
        let node = start_node(&self.config, target, id);
        wait_ring_active(&node, &INGESTERS, RING_TIMEOUT);
        node
    }
}

/// Pushes `batch` until it is acknowledged (as promtail retries a 5xx);
/// returns how many attempts failed.
fn push_until_acked(distributor: &SluiceProcess, batch: &[Stream]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut failures = 0;
    loop {
        let resp = distributor.push_proto(batch, None);
        if resp.status == 204 {
            return failures;
        }
        assert!(
            resp.status >= 500,
            "a valid push must never be refused with {}: {}",
            resp.status,
            resp.body
        );
        failures += 1;
        assert!(
            Instant::now() < deadline,
            "push not acknowledged within 60s; last: {} {}",
            resp.status,
            resp.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Lines `[from, to)` of stream `s`, as one push.
fn batch(data: &Dataset, s: usize, from: usize, to: usize) -> Vec<Stream> {
    vec![Stream::new(
        &data.labels_text(s),
        (from..to).map(|i| data.entry(s, i)),
    )]
}

/// Reads every stream of `data` through `querier` and compares it with the
/// first `acked[s]` lines of each stream, forward and backward.
fn assert_reads_exactly(querier: &SluiceProcess, data: &Dataset, acked: &[usize], what: &str) {
    let range = data.range();
    for (s, &count) in acked.iter().enumerate() {
        let expected: StreamSet = [(
            data.labels(s),
            (0..count).map(|i| data.entry(s, i)).collect(),
        )]
        .into_iter()
        .collect();
        let forward = query_dir(querier, &data.stream_selector(s), range, "forward", 100_000);
        if let Some(difference) = diff(&forward, &expected) {
            panic!("{what}: stream s{s} forward:\n  {difference}");
        }
        let backward = query_dir(
            querier,
            &data.stream_selector(s),
            range,
            "backward",
            100_000,
        );
        let reversed: StreamSet = expected
            .iter()
            .map(|(labels, entries)| (labels.clone(), entries.iter().rev().cloned().collect()))
            .collect();
        if let Some(difference) = diff(&backward, &reversed) {
            panic!("{what}: stream s{s} backward:\n  {difference}");
        }
    }
    // The metric path dedupes replicas as well.
    let total: usize = acked.iter().sum();
    let query = format!("sum(count_over_time({}[1h]))", data.selector());
    let time = (range.1 + 10 * SEC).to_string();
    let resp = querier.query(&[("query", query.as_str()), ("time", time.as_str())], None);
    let json = resp.ok_json();
    let value = json["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no count in {json}"));
    assert_eq!(
        value,
        total.to_string(),
        "{what}: count_over_time of every line"
    );
    // So do samples the ingesters extract: the sum of each line's number,
    // and the lines counted per stream, through a parser.
    let sum: usize = acked
        .iter()
        .map(|&count| count * count.saturating_sub(1) / 2)
        .sum();
    let query = format!(
        r#"sum(sum_over_time({} | pattern "<_> <_> line <n> <_>" | unwrap n [1h]))"#,
        data.selector()
    );
    let resp = querier.query(&[("query", query.as_str()), ("time", time.as_str())], None);
    let json = resp.ok_json();
    assert_eq!(
        json["data"]["result"][0]["value"][1].as_str(),
        Some(sum.to_string().as_str()),
        "{what}: sum of unwrapped line numbers in {json}"
    );
    let query = format!(
        r#"sum by (stream) (count_over_time({} | pattern "<_> <_> line <n> <_>" | n=~"[0-9]+" [1h]))"#,
        data.selector()
    );
    let resp = querier.query(&[("query", query.as_str()), ("time", time.as_str())], None);
    let json = resp.ok_json();
    for (s, &count) in acked.iter().enumerate() {
        let stream = format!("s{s}");
        let value = json["data"]["result"]
            .as_array()
            .and_then(|series| {
                series
                    .iter()
                    .find(|one| one["metric"]["stream"].as_str() == Some(stream.as_str()))
            })
            .and_then(|one| one["value"][1].as_str())
            .map(str::to_string);
        let expected = (count > 0).then(|| count.to_string());
        assert_eq!(
            value, expected,
            "{what}: parsed lines of {stream} in {json}"
        );
    }
}

/// Pushes `lines_per_stream` lines of every stream from `threads` threads
/// (each owning some streams) in batches of `per_push`; calls `at_half`
/// once half of all lines are acknowledged. Returns lines acked per stream.
fn push_concurrently(
    distributor: &SluiceProcess,
    data: &Dataset,
    threads: usize,
    per_push: usize,
    at_half: impl FnOnce(),
) -> Vec<usize> {
    let acked: Vec<AtomicUsize> = (0..data.streams).map(|_| AtomicUsize::new(0)).collect();
    let total = AtomicUsize::new(0);
    let half = data.streams * data.per_stream / 2;
    let half_reached = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (acked, total, half_reached) = (&acked, &total, &half_reached);
            scope.spawn(move || {
                for from in (0..data.per_stream).step_by(per_push) {
                    for s in (thread..data.streams).step_by(threads) {
                        let to = (from + per_push).min(data.per_stream);
                        push_until_acked(distributor, &batch(data, s, from, to));
                        acked[s].store(to, Ordering::SeqCst);
                        if total.fetch_add(to - from, Ordering::SeqCst) + (to - from) >= half {
                            half_reached.store(true, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
        while !half_reached.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        at_half();
    });
    acked
        .iter()
        .map(|count| count.load(Ordering::SeqCst))
        .collect()
}

#[test]
fn sigkill_of_one_ingester_loses_no_acknowledged_line() {
    let mut cluster = Cluster::start();
    let distributor = cluster.node("distributor", "distributor-0");
    let querier = cluster.node("querier", "querier-0");
    let data = Dataset::new("rf3kill", 10, 10_000, now_ns() - 600 * SEC);

    let victim = Mutex::new(cluster.ingesters.remove(1));
    let acked = push_concurrently(&distributor, &data, 4, 500, || {
        victim.lock().unwrap().kill();
    });
    let mut victim = victim.into_inner().unwrap();
    assert_eq!(acked.iter().sum::<usize>(), 100_000);
    assert_reads_exactly(&querier, &data, &acked, "one ingester killed");

    // The dead ingester stays in the ring, unhealthy, with a Forget button.
    let deadline = Instant::now() + RING_TIMEOUT;
    loop {
        let states = ring_states(&querier, "/ring");
        if states
            .get("ingester-1")
            .is_some_and(|(_, healthy)| !healthy)
        {
            assert_eq!(states.len(), 3, "{states:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ingester-1 never turned unhealthy: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let page = querier.get("/ring", &[], None);
    assert!(page.body.contains("UNHEALTHY"), "{}", page.body);
    assert!(
        page.body.contains(r#"name="forget" value="ingester-1""#),
        "{}",
        page.body
    );
    assert_reads_exactly(&querier, &data, &acked, "one ingester unhealthy");

    // It comes back from its WAL, rejoins, and nothing is doubled.
    victim.restart();
    wait_ring_active(&querier, &INGESTERS, RING_TIMEOUT);
    assert_reads_exactly(&querier, &data, &acked, "after the restart");
    cluster.ingesters.insert(1, victim);

    // Forget: a member that is gone for good can be removed by hand.
    cluster.ingesters[2].kill();
    let deadline = Instant::now() + RING_TIMEOUT;
    while ring_states(&querier, "/ring")
        .get("ingester-2")
        .is_none_or(|(_, healthy)| *healthy)
    {
        assert!(
            Instant::now() < deadline,
            "ingester-2 never turned unhealthy"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let forget = querier.send(
        querier
            .client()
            .post(format!("{}/ring", querier.http_url()))
            .form(&[("forget", "ingester-2")]),
    );
    assert!(
        forget.status == 303 || forget.status == 200,
        "{}",
        forget.body
    );
    let states = ring_states(&distributor, "/ingester/ring");
    let deadline = Instant::now() + RING_TIMEOUT;
    let mut states = states;
    while states.contains_key("ingester-2") {
        assert!(
            Instant::now() < deadline,
            "forgotten member still listed: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
        states = ring_states(&distributor, "/ingester/ring");
    }
    assert_eq!(states.len(), 2);
}

#[test]
fn rolling_restart_under_continuous_push_loses_nothing() {
    let mut cluster = Cluster::start();
    let distributor = cluster.node("distributor", "distributor-0");
    let querier = cluster.node("querier", "querier-0");
    let data = Dataset::new("rolling", 6, 200_000, now_ns() - 600 * SEC);
    let stop = AtomicBool::new(false);
    let acked: Vec<AtomicUsize> = (0..data.streams).map(|_| AtomicUsize::new(0)).collect();
    let retried = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for s in 0..data.streams {
            let (stop, acked, retried, data, distributor) =
                (&stop, &acked, &retried, &data, &distributor);
            scope.spawn(move || {
                let mut from = 0;
                while !stop.load(Ordering::SeqCst) && from < data.per_stream {
                    let to = from + 100;
                    retried.fetch_add(
                        push_until_acked(distributor, &batch(data, s, from, to)),
                        Ordering::SeqCst,
                    );
                    acked[s].store(to, Ordering::SeqCst);
                    from = to;
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
        for index in 0..cluster.ingesters.len() {
            std::thread::sleep(Duration::from_millis(500));
            let status = cluster.ingesters[index].terminate();
            assert!(status.success(), "ingester-{index} exited with {status}");
            cluster.ingesters[index].restart();
            wait_ring_active(&querier, &INGESTERS, RING_TIMEOUT);
        }
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::SeqCst);
    });
    let acked: Vec<usize> = acked.iter().map(|n| n.load(Ordering::SeqCst)).collect();
    assert!(
        acked.iter().all(|&n| n > 0),
        "every stream pushed: {acked:?}"
    );
    eprintln!(
        "rolling restart: acked per stream {acked:?}, {} pushes retried",
        retried.load(Ordering::SeqCst)
    );
    assert_reads_exactly(&querier, &data, &acked, "after a rolling restart");
}

#[test]
fn memcached_outage_and_restart_change_nothing_for_clients() {
    let mut cluster = Cluster::start();
    let distributor = cluster.node("distributor", "distributor-0");
    let querier = cluster.node("querier", "querier-0");
    let data = Dataset::new("mcrestart", 3, 400, now_ns() - 600 * SEC);
    let push_all = |from: usize, what: &str| {
        for s in 0..data.streams {
            assert_eq!(
                push_until_acked(&distributor, &batch(&data, s, from, from + 100)),
                0,
                "{what}: push acknowledged at once"
            );
        }
    };
    push_all(0, "before");
    // memcached goes away for longer than the heartbeat timeout: every
    // component keeps the ring it last saw, with the health it had.
    cluster.memcached.stop();
    push_all(100, "memcached just stopped");
    std::thread::sleep(Duration::from_secs(12));
    push_all(200, "memcached down for 12s");
    assert_reads_exactly(&querier, &data, &[300, 300, 300], "while memcached is down");
    for node in cluster.ingesters.iter_mut() {
        assert!(
            node.try_wait().is_none(),
            "an ingester exited during the outage"
        );
    }
    // It comes back empty; the members' heartbeats write the ring back.
    cluster.memcached.start_again();
    let deadline = Instant::now() + RING_TIMEOUT;
    loop {
        let record = cluster.memcached.command("get sluice-ring-ingester");
        if INGESTERS
            .iter()
            .all(|id| record.contains(&format!("\"{id}\"")))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ring record not restored: {record}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_ring_active(&querier, &INGESTERS, RING_TIMEOUT);
    push_all(300, "after memcached came back");
    assert_reads_exactly(
        &querier,
        &data,
        &[400, 400, 400],
        "after a memcached restart",
    );
}

#[test]
fn two_distributors_and_two_queriers_behave_as_one() {
    let cluster = Cluster::start();
    let distributors = [
        cluster.node("distributor", "distributor-0"),
        cluster.node("distributor", "distributor-1"),
    ];
    let queriers = [
        cluster.node("querier", "querier-0"),
        cluster.node("querier", "querier-1"),
    ];
    let data = Dataset::new("twoeach", 4, 400, now_ns() - 600 * SEC);
    // Alternate distributors batch by batch, on the same streams.
    for (n, from) in (0..data.per_stream).step_by(50).enumerate() {
        for s in 0..data.streams {
            push_until_acked(
                &distributors[(n + s) % 2],
                &batch(&data, s, from, from + 50),
            );
        }
    }
    let acked = vec![data.per_stream; data.streams];
    for querier in &queriers {
        assert_reads_exactly(querier, &data, &acked, "two of each");
    }
    let (start, end) = data.range();
    let (start, end) = (start.to_string(), end.to_string());
    let range = [("start", start.as_str()), ("end", end.as_str())];
    let answers: Vec<[String; 3]> = queriers
        .iter()
        .map(|q| {
            [
                q.labels(&range, None).ok_json().to_string(),
                q.label_values("stream", &range, None).ok_json().to_string(),
                q.series(
                    &[range[0], range[1], ("match[]", r#"{job="twoeach"}"#)],
                    None,
                )
                .ok_json()
                .to_string(),
            ]
        })
        .collect();
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0][1].contains("s3"), "{}", answers[0][1]);
    let series: serde_json::Value = serde_json::from_str(&answers[0][2]).unwrap();
    assert_eq!(series["data"].as_array().map(Vec::len), Some(4), "{series}");

    // Both distributors are in the distributor ring.
    let states = ring_states(&distributors[0], "/distributor/ring");
    let expected: BTreeMap<String, (String, bool)> = ["distributor-0", "distributor-1"]
        .iter()
        .map(|id| (id.to_string(), ("ACTIVE".to_string(), true)))
        .collect();
    assert_eq!(states, expected);
}

/// Pushes one 2000-byte line as tenant `fake` to a distributor whose burst
/// is smaller, so it is always refused, and returns the per-distributor
/// rate the 429 names.
fn refused_rate(distributor: &SluiceProcess) -> u64 {
    let line = "r".repeat(2000);
    let resp = distributor.push_proto(
        &[Stream::new(r#"{job="rate"}"#, [(now_ns(), line.as_str())])],
        None,
    );
    assert_eq!(resp.status, 429, "{}", resp.body);
    let limit = resp
        .text()
        .split("(limit: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no limit in {:?}", resp.body));
    limit.parse().expect("a number of bytes")
}

/// Waits (≤ 30 s) until `distributor` refuses at `rate` bytes/s.
fn wait_refused_rate(distributor: &SluiceProcess, rate: u64, what: &str) {
    let deadline = Instant::now() + RING_TIMEOUT;
    loop {
        let seen = refused_rate(distributor);
        if seen == rate {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: limit still {seen}, expected {rate}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// With `ingestion_rate_strategy: global` (the default) each distributor
/// allows a tenant its rate divided by the healthy distributors of the
/// distributor ring; the tenant's limits come from the runtime config file.
#[test]
fn global_ingestion_rate_is_divided_among_healthy_distributors() {
    let root = tempfile::tempdir().expect("tempdir");
    let memcached = Memcached::start();
    let runtime = root.path().join("runtime.yaml");
    std::fs::write(
        &runtime,
        "overrides:\n  fake:\n    ingestion_rate_mb: 1\n    ingestion_burst_size_mb: 0.001\n",
    )
    .expect("runtime config");
    let config = ClusterConfig {
        memcached: memcached.addr(),
        store_dir: store_dir(root.path()),
        extra_yaml: format!("runtime_config:\n  file: {}\n", runtime.display()),
    };
    const MIB: u64 = 1 << 20;
    // Refusals happen before any ingester is asked, so none is needed.
    let first = start_node(&config, "distributor", "distributor-0");
    wait_refused_rate(&first, MIB, "one distributor");
    let mut second = start_node(&config, "distributor", "distributor-1");
    wait_refused_rate(&first, MIB / 2, "two distributors, seen by the first");
    wait_refused_rate(&second, MIB / 2, "two distributors, seen by the second");
    // A distributor that leaves hands its share back.
    let status = second.terminate();
    assert!(status.success(), "distributor-1 exited with {status}");
    wait_refused_rate(&first, MIB, "back to one distributor");
}
