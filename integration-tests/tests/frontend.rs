//! The query frontend in front of the queriers: split queries answer
//! exactly what one unsplit query answers (across UTC midnight), the
//! results cache in a real memcached serves repeated and extended
//! dashboard queries, and the per-tenant queue refuses a flooding tenant
//! without refusing another.

use std::time::{Duration, Instant};

use sluice_integration_tests::cluster::Memcached;
use sluice_integration_tests::durable::{metric, post};
use sluice_integration_tests::{now_ns, SluiceOptions, SluiceProcess, Stream, Value, SEC};

const HOUR: i64 = 3600 * SEC;
const DAY: i64 = 24 * HOUR;
const LEVELS: [&str; 3] = ["info", "warn", "error"];
const PODS: usize = 4;

/// The most recent UTC midnight at least two hours ago.
fn midnight() -> i64 {
    (now_ns() - 2 * HOUR).div_euclid(DAY) * DAY
}

/// Three levels with a line every 20 s over `[m - 3h, m + 90m)`, each
/// spread over four pod streams.
fn push_data(p: &SluiceProcess, m: i64) -> usize {
    let mut total = 0;
    for (index, level) in LEVELS.iter().enumerate() {
        let entries: Vec<(i64, String)> = (0..)
            .map(|i| m - 3 * HOUR + i * 20 * SEC + index as i64 * SEC)
            .take_while(|ts| *ts < m + 90 * 60 * SEC)
            .map(|ts| {
                (
                    ts,
                    format!("level={level} msg=\"request {ts}\" took={}ms", ts % 997),
                )
            })
            .collect();
        total += entries.len();
        // Spread over four pods, so queries can be sharded by stream.
        for pod in 0..PODS {
            let lines: Vec<(i64, String)> = entries
                .iter()
                .enumerate()
                .filter(|(i, _)| i % PODS == pod)
                .map(|(_, entry)| entry.clone())
                .collect();
            for chunk in lines.chunks(500) {
                p.push_proto_ok(
                    &[Stream::new(
                        &format!(r#"{{job="fe", level="{level}", pod="fe-{pod}"}}"#),
                        chunk.iter().cloned(),
                    )],
                    None,
                );
            }
        }
    }
    total
}

/// An `all` process holding the data, flushed to its store, and a
/// querier-only process reading that store with no frontend: the
/// unsplit reference.
fn data_and_reference(extra_yaml: &str) -> (SluiceProcess, SluiceProcess, i64, usize) {
    let mut options = SluiceOptions::new().extra_yaml(extra_yaml);
    options
        .extra_yaml
        .push_str("querier:\n  query_ingesters_within: 0s\n");
    let all = SluiceProcess::start(options);
    let m = midnight();
    let total = push_data(&all, m);
    assert_eq!(post(&all, "/flush").status, 204);
    let store = all.data_dir().join("chunks");
    let reference = SluiceProcess::start(
        SluiceOptions::new()
            .target("querier")
            .extra_yaml(&format!(
                "storage_config:\n  filesystem:\n    directory: {}\n  index_shipper:\n    resync_interval: 1s\n",
                store.display()
            )),
    );
    // Wait until the reference sees every flushed line.
    let query = r#"sum(count_over_time({job="fe"}[1d]))"#;
    let time = (m + 2 * HOUR).to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = reference.query(&[("query", query), ("time", time.as_str())], None);
        if resp.status == 200
            && resp.json()["data"]["result"][0]["value"][1].as_str()
                == Some(total.to_string().as_str())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "store never showed all lines: {}",
            resp.body
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    (all, reference, m, total)
}

fn range(p: &SluiceProcess, query: &str, start: i64, end: i64, extra: &[(&str, &str)]) -> Value {
    let (start, end) = (start.to_string(), end.to_string());
    let mut params = vec![
        ("query", query),
        ("start", start.as_str()),
        ("end", end.as_str()),
    ];
    params.extend_from_slice(extra);
    let json = p.query_range(&params, None).ok_json();
    json["data"]["result"].clone()
}

#[test]
fn split_queries_answer_exactly_what_one_query_answers() {
    // 1h splits: the range crosses midnight and 4 other boundaries.
    let (frontend, reference, m, _) =
        data_and_reference("limits_config:\n  split_queries_by_interval: 1h\n");
    let (start, end) = (m - 3 * HOUR - 17 * SEC, m + 100 * 60 * SEC);
    let cases: [(&str, &[(&str, &str)]); 5] = [
        (
            r#"sum by (level) (count_over_time({job="fe"}[5m]))"#,
            &[("step", "60")],
        ),
        (r#"rate({job="fe"} |= "request" [2m])"#, &[("step", "7m")]),
        (
            r#"max_over_time({job="fe"} | regexp "took=(?P<took>[0-9]+)ms" | unwrap took [10m])"#,
            &[("step", "333")],
        ),
        (
            r#"{job="fe"} |= "request""#,
            &[("limit", "700"), ("direction", "backward")],
        ),
        (
            r#"{job="fe"} | logfmt | level="warn""#,
            &[("limit", "450"), ("direction", "forward")],
        ),
    ];
    for (query, extra) in cases {
        let split = range(&frontend, query, start, end, extra);
        let unsplit = range(&reference, query, start, end, extra);
        assert!(
            split.as_array().is_some_and(|r| !r.is_empty()),
            "{query}: empty result"
        );
        assert_eq!(
            split, unsplit,
            "{query} {extra:?}: split and unsplit differ"
        );
    }
    assert!(metric(&frontend, "loki_query_frontend_split_queries") >= 20.0);
}

/// A matrix's values by series and time, for comparing answers whose
/// sums may differ in the last bit (shards add in another order).
fn values(result: &Value) -> std::collections::BTreeMap<String, Vec<(f64, f64)>> {
    result
        .as_array()
        .expect("a matrix")
        .iter()
        .map(|series| {
            let points = series["values"]
                .as_array()
                .expect("values")
                .iter()
                .map(|point| {
                    let time = point[0].as_f64().expect("time");
                    let value: f64 = point[1].as_str().expect("value").parse().expect("number");
                    (time, value)
                })
                .collect();
            (series["metric"].to_string(), points)
        })
        .collect()
}

#[test]
fn sharded_queries_answer_exactly_what_one_query_answers() {
    // Every split holds more than 2 KB per stream group: 4 shards each.
    let (frontend, reference, m, _) = data_and_reference(
        "limits_config:\n  split_queries_by_interval: 1h\n  tsdb_max_bytes_per_shard: 2KB\n  \
         tsdb_max_query_parallelism: 4\n",
    );
    let (start, end) = (m - 3 * HOUR - 17 * SEC, m + 100 * 60 * SEC);
    let took = r#"regexp "took=(?P<took>[0-9]+)ms" | unwrap took"#;
    let cases = [
        (
            r#"sum by (level) (count_over_time({job="fe"}[5m]))"#.to_string(),
            4,
        ),
        (r#"count(count_over_time({job="fe"}[5m]))"#.to_string(), 4),
        (r#"rate({job="fe"} |= "request" [2m])"#.to_string(), 4),
        (
            r#"sum(bytes_rate({job="fe", level=~"warn|error"}[3m]))"#.to_string(),
            4,
        ),
        (
            format!(r#"max(max_over_time({{job="fe"}} | {took} [10m]))"#),
            4,
        ),
        (
            format!(r#"min_over_time({{job="fe"}} | {took} [10m]) by (level)"#),
            4,
        ),
        // Not shardable: run whole.
        (r#"avg(count_over_time({job="fe"}[5m]))"#.to_string(), 0),
    ];
    for (query, shards) in cases {
        let (first, last) = (start.to_string(), end.to_string());
        let params = [
            ("query", query.as_str()),
            ("start", first.as_str()),
            ("end", last.as_str()),
            ("step", "300"),
        ];
        let answer = frontend.query_range(&params, None).ok_json();
        assert_eq!(
            answer["data"]["stats"]["summary"]["shards"], shards,
            "{query}: shards"
        );
        let sharded = values(&answer["data"]["result"]);
        let whole = values(&reference.query_range(&params, None).ok_json()["data"]["result"]);
        assert!(!whole.is_empty(), "{query}: empty result");
        assert_eq!(
            sharded.keys().collect::<Vec<_>>(),
            whole.keys().collect::<Vec<_>>(),
            "{query}: series differ"
        );
        for (series, points) in &whole {
            let got = &sharded[series];
            assert_eq!(got.len(), points.len(), "{query} {series}: points");
            for ((t1, v1), (t2, v2)) in got.iter().zip(points) {
                assert_eq!(t1, t2, "{query} {series}");
                assert!(
                    (v1 - v2).abs() <= 1e-9 * v2.abs().max(1.0),
                    "{query} {series} at {t1}: sharded {v1}, whole {v2}"
                );
            }
        }
    }
}

#[test]
fn results_cache_in_memcached_serves_repeats_and_extensions() {
    let memcached = Memcached::start();
    let (frontend, reference, m, _) = data_and_reference(&format!(
        "query_range:\n  cache_results: true\n  results_cache:\n    cache:\n      \
         memcached_client:\n        addresses: [{}]\n        timeout: 2s\n\
         limits_config:\n  max_cache_freshness_per_query: 10m\n",
        memcached.addr()
    ));
    let query = r#"sum by (level) (count_over_time({job="fe"}[5m]))"#;
    let step = [("step", "60")];
    let (start, end) = (m - 2 * HOUR, m + 80 * 60 * SEC);

    let first = range(&frontend, query, start, end, &step);
    let hits_before = metric(&frontend, "loki_cache_hits");
    let splits_before = metric(&frontend, "loki_query_frontend_split_queries");
    let second = range(&frontend, query, start, end, &step);
    assert_eq!(first, second);
    assert_eq!(first, range(&reference, query, start, end, &step));
    // Two pieces (either side of midnight), both answered from memcached.
    assert_eq!(metric(&frontend, "loki_cache_hits") - hits_before, 2.0);
    assert_eq!(
        metric(&frontend, "loki_query_frontend_split_queries"),
        splits_before,
        "a repeated query sends nothing to the queriers"
    );
    let stats = memcached.command("stats");
    let get_hits: u64 = stats
        .lines()
        .find_map(|line| line.strip_prefix("STAT get_hits "))
        .and_then(|value| value.trim().parse().ok())
        .expect("get_hits in memcached stats");
    assert!(get_hits >= 2, "memcached get_hits {get_hits}");

    // A wider range fetches only the part before the cached extent.
    let wider_start = start - 45 * 60 * SEC;
    let wider = range(&frontend, query, wider_start, end, &step);
    assert_eq!(
        metric(&frontend, "loki_query_frontend_split_queries") - splits_before,
        1.0,
        "only the missing 45 minutes are queried"
    );
    assert_eq!(wider, range(&reference, query, wider_start, end, &step));
}

#[test]
fn chunk_cache_in_memcached_serves_repeated_store_reads() {
    let memcached = Memcached::start();
    let (all, reference, m, _) = data_and_reference("");
    let cached = SluiceProcess::start(SluiceOptions::new().target("querier").extra_yaml(&format!(
        "storage_config:\n  filesystem:\n    directory: {}\n\
         chunk_store_config:\n  chunk_cache_config:\n    memcached_client:\n      \
         addresses: [{}]\n      timeout: 2s\n",
        all.data_dir().join("chunks").display(),
        memcached.addr()
    )));
    let query = r#"{job="fe"} |= "request""#;
    let params = [("limit", "2000"), ("direction", "forward")];
    let (start, end) = (m - 3 * HOUR, m + 2 * HOUR);
    let first = range(&cached, query, start, end, &params);
    // A limited read goes through the range in windows and may look a chunk
    // up again in a later window of the same query: only the first lookup
    // of each chunk can miss.
    let fetched = metric(&cached, "loki_cache_fetched_keys");
    let hits = metric(&cached, "loki_cache_hits");
    assert!(fetched > 0.0, "chunks were looked up in the cache");
    assert!(
        hits < fetched,
        "the first query found {hits} of {fetched} keys cached"
    );
    let second = range(&cached, query, start, end, &params);
    assert_eq!(first, second);
    assert_eq!(first, range(&reference, query, start, end, &params));
    assert_eq!(
        metric(&cached, "loki_cache_hits") - hits,
        metric(&cached, "loki_cache_fetched_keys") - fetched,
        "every chunk of the repeated query came from memcached"
    );
    assert!(
        metric(&cached, "loki_cache_fetched_keys") - fetched >= fetched - hits,
        "the repeated query looked up every chunk again"
    );
}

#[test]
fn a_flooding_tenant_gets_429_and_another_tenant_is_served() {
    let p = SluiceProcess::start(SluiceOptions::new().auth(true).extra_yaml(
        "frontend:\n  max_outstanding_per_tenant: 2\nquerier:\n  max_concurrent: 1\n\
             limits_config:\n  split_queries_by_interval: 1h\n",
    ));
    let now = now_ns();
    for tenant in ["flood", "calm"] {
        p.push_proto_ok(
            &[Stream::new(r#"{job="q"}"#, [(now - 60 * SEC, "line")])],
            Some(tenant),
        );
    }
    let query = r#"sum(count_over_time({job="q"}[1m]))"#;
    // 12 one-hour pieces at once: more than 2 may not wait in the queue.
    let (start, end) = ((now - 12 * HOUR).to_string(), now.to_string());
    let flood = p.query_range(
        &[
            ("query", query),
            ("start", &start),
            ("end", &end),
            ("step", "60"),
        ],
        Some("flood"),
    );
    assert_eq!(flood.status, 429, "{}", flood.body);
    assert_eq!(flood.body, "too many outstanding requests\n");
    let calm_start = (now - 30 * 60 * SEC).to_string();
    let calm = p.query_range(
        &[
            ("query", query),
            ("start", &calm_start),
            ("end", &end),
            ("step", "60"),
        ],
        Some("calm"),
    );
    assert_eq!(calm.status, 200, "{}", calm.body);
    assert!(metric(&p, "loki_query_frontend_discarded_requests") >= 1.0);
}

/// Loki's query limits, per tenant through runtime overrides: a tenant
/// with strict limits gets Loki's messages; another tenant, on the
/// defaults, runs the same queries.
#[test]
fn query_limits_apply_per_tenant_with_lokis_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = dir.path().join("runtime.yaml");
    std::fs::write(
        &runtime,
        "overrides:\n  strict:\n    max_query_length: 2h\n    max_query_range: 10m\n    \
         max_query_series: 1\n    max_entries_limit_per_query: 10\n  recent:\n    max_query_lookback: 1h\n",
    )
    .expect("write runtime config");
    let p = SluiceProcess::start(
        SluiceOptions::new()
            .auth(true)
            .extra_yaml(&format!("runtime_config:\n  file: {}\n", runtime.display())),
    );
    let now = now_ns();
    for tenant in ["strict", "loose", "recent"] {
        p.push_proto_ok(
            &[
                Stream::new(
                    r#"{job="q", level="info"}"#,
                    [(now - 90 * 60 * SEC, "old"), (now - 60 * SEC, "new")],
                ),
                Stream::new(r#"{job="q", level="warn"}"#, [(now - 60 * SEC, "warned")]),
            ],
            Some(tenant),
        );
    }
    let ask = |tenant: &str, query: &str, span: i64, extra: &[(&str, &str)]| {
        let (start, end) = ((now - span).to_string(), now.to_string());
        let mut params = vec![
            ("query", query),
            ("start", start.as_str()),
            ("end", end.as_str()),
        ];
        params.extend_from_slice(extra);
        p.query_range(&params, Some(tenant))
    };
    let count = r#"sum by (level) (count_over_time({job="q"}[5m]))"#;
    // (limit, query, span, extra parameters, message)
    type Case<'a> = (&'a str, &'a str, i64, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (
            "max_query_length",
            r#"{job="q"}"#,
            3 * HOUR,
            &[("limit", "5")],
            "the query time range exceeds the limit (query length: 3h0m0s, limit: 2h0m0s)",
        ),
        (
            "max_query_range",
            r#"sum(count_over_time({job="q"}[30m]))"#,
            HOUR,
            &[("step", "60")],
            "[interval] value exceeds limit",
        ),
        (
            "max_query_series",
            count,
            HOUR,
            &[("step", "60")],
            "maximum of series (1) reached for a single query",
        ),
        (
            "max_entries_limit_per_query",
            r#"{job="q"}"#,
            HOUR,
            &[("limit", "11")],
            "max entries limit per query exceeded, limit > max_entries_limit (11 > 10)",
        ),
    ];
    for (limit, query, span, extra, message) in cases {
        let strict = ask("strict", query, span, extra);
        assert_eq!(strict.status, 400, "{limit}: {}", strict.body);
        assert_eq!(strict.body.trim_end(), message, "{limit}");
        let loose = ask("loose", query, span, extra);
        assert_eq!(
            loose.status, 200,
            "{limit} for a default tenant: {}",
            loose.body
        );
    }
    // max_query_lookback moves the start: the 90-minute-old line is gone
    // for that tenant only.
    let lines = |tenant: &str| {
        let json = ask(
            tenant,
            r#"{job="q", level="info"}"#,
            2 * HOUR,
            &[("limit", "5")],
        )
        .ok_json();
        json["data"]["result"][0]["values"]
            .as_array()
            .map(|values| values.len())
            .unwrap_or(0)
    };
    assert_eq!(lines("recent"), 1);
    assert_eq!(lines("loose"), 2);
}
