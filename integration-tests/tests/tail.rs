//! Live tail (`GET /loki/api/v1/tail`) against the real binary over a
//! real WebSocket: backfill, lines pushed after connecting, pipelines,
//! Loki's parameter errors, the per-tenant limit and the maximum duration.

use std::time::Duration;

use sluice_integration_tests::live_tail::TailClient;
use sluice_integration_tests::{labels, now_ns, prom, SluiceOptions, SluiceProcess, Stream, SEC};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn a_tail_receives_the_backfill_then_every_line_pushed_after_it_connects() {
    let p = SluiceProcess::start_default();
    let now = now_ns();
    p.push_proto_ok(
        &[Stream::new(
            "{job=\"tail\"}",
            [
                (now - 30 * SEC, "old line"),
                (now - 20 * SEC, "recent line"),
            ],
        )],
        None,
    );
    let start = (now - 25 * SEC).to_string();
    let mut client = TailClient::connect(&p, &[("query", "{job=\"tail\"}"), ("start", &start)]);
    // The backfill: entries since `start` only.
    let backfill = client.read_until(WAIT, |entries| !entries.is_empty());
    assert_eq!(
        backfill,
        vec![(
            labels(&[("job", "tail")]),
            now - 20 * SEC,
            "recent line".to_string()
        )]
    );

    // Lines pushed now arrive, in timestamp order, each once; other
    // streams do not.
    let base = now_ns();
    p.push_proto_ok(
        &[
            Stream::new(
                "{job=\"tail\"}",
                [(base + 2, "live <2>"), (base + 1, "live 1")],
            ),
            Stream::new("{job=\"other\"}", [(base, "not tailed")]),
        ],
        None,
    );
    p.push_proto_ok(
        &[Stream::new("{job=\"tail\"}", [(base + 3, "live 3")])],
        None,
    );
    let entries = client.read_until(WAIT, |entries| entries.len() >= 4);
    let live: Vec<(i64, &str)> = entries[1..]
        .iter()
        .map(|(_, ts, line)| (*ts - base, line.as_str()))
        .collect();
    assert_eq!(live, vec![(1, "live 1"), (2, "live <2>"), (3, "live 3")]);
    // Nothing else comes (a ping does).
    let more = client.read_until(Duration::from_millis(1500), |_| false);
    assert_eq!(more.len(), 4, "no duplicate or foreign line: {more:?}");
    assert!(client.pings >= 1, "the server pings about once a second");
    assert_eq!(client.dropped(), 0);

    let metrics = p.metrics_text();
    assert_eq!(
        prom::find(&metrics, "loki_querier_tail_active", &[]),
        Some(1.0)
    );
    assert!(prom::find(&metrics, "loki_querier_tail_bytes_total", &[]).is_some_and(|b| b >= 30.0));
    assert_eq!(
        prom::find(&metrics, "loki_querier_tail_active_streams", &[]),
        Some(1.0)
    );
    client.close();
}

#[test]
fn a_tail_runs_the_querys_pipeline() {
    let p = SluiceProcess::start_default();
    // The backfill comes once the tail is in place: a marker line tells.
    let marker_at = now_ns() - SEC;
    p.push_proto_ok(
        &[Stream::new(
            "{job=\"app\"}",
            [(marker_at, "level=error msg=marker")],
        )],
        None,
    );
    let start = (marker_at - SEC).to_string();
    let mut client = TailClient::connect(
        &p,
        &[
            (
                "query",
                "{job=\"app\"} |= \"msg\" | logfmt | level=\"error\"",
            ),
            ("start", &start),
        ],
    );
    let backfill = client.read_until(WAIT, |entries| !entries.is_empty());
    assert_eq!(backfill.len(), 1, "{backfill:?}");
    assert_eq!(backfill[0].2, "level=error msg=marker");
    let base = now_ns();
    p.push_proto_ok(
        &[Stream::new(
            "{job=\"app\"}",
            [
                (base, "level=info msg=a"),
                (base + 1, "level=error msg=b"),
                (base + 2, "level=error no message"),
            ],
        )],
        None,
    );
    let entries = client.read_until(WAIT, |entries| entries.len() >= 2);
    assert_eq!(
        entries[1..].to_vec(),
        vec![(
            labels(&[("job", "app"), ("level", "error"), ("msg", "b")]),
            base + 1,
            "level=error msg=b".to_string()
        )]
    );
    client.close();
}

#[test]
fn bad_tail_parameters_are_refused_before_the_upgrade() {
    let p = SluiceProcess::start_default();
    for (params, message) in [
        (
            vec![("query", "{job=\"a\"}"), ("delay_for", "6")],
            "delay_for can't be greater than 5\n",
        ),
        (
            vec![("query", "{job=\"a\"}"), ("limit", "0")],
            "limit must be a positive value\n",
        ),
        (
            vec![("query", "count_over_time({job=\"a\"}[1m])")],
            "tail queries must be log queries, not metric queries\n",
        ),
    ] {
        let resp = p.get("/loki/api/v1/tail", &params, None);
        assert_eq!(resp.status, 400, "{params:?}: {}", resp.body);
        assert_eq!(resp.body, message, "{params:?}");
    }
    let resp = p.get("/loki/api/v1/tail", &[("query", "{job=")], None);
    assert_eq!(resp.status, 400);
    assert!(resp.body.starts_with("parse error"), "{}", resp.body);
}

#[test]
fn a_tenant_over_its_tail_limit_is_closed_with_lokis_message() {
    let p = SluiceProcess::start(
        SluiceOptions::new().extra_yaml("limits_config:\n  max_concurrent_tail_requests: 2\n"),
    );
    let mut open: Vec<TailClient> = (0..2)
        .map(|_| TailClient::connect(&p, &[("query", "{job=\"x\"}")]))
        .collect();
    for client in &mut open {
        client.read_until(Duration::from_millis(500), |_| false);
        assert!(client.closed.is_none(), "{:?}", client.closed);
    }
    let mut third = TailClient::connect(&p, &[("query", "{job=\"x\"}")]);
    let closed = third.wait_closed(WAIT).expect("the third tail is closed");
    assert_eq!(closed.code, Some(1011));
    assert_eq!(
        closed.reason,
        "max concurrent tail requests limit exceeded, count > limit (3 > 2)"
    );
    // Closing one makes room again.
    open.pop().unwrap().close();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mut again = TailClient::connect(&p, &[("query", "{job=\"x\"}")]);
        again.read_until(Duration::from_millis(1500), |_| false);
        if again.closed.is_none() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a closed tail never freed its slot: {:?}",
            again.closed
        );
    }
}

#[test]
fn a_tail_ends_at_tail_max_duration() {
    let p = SluiceProcess::start(
        SluiceOptions::new().extra_yaml("querier:\n  tail_max_duration: 2s\n"),
    );
    let mut client = TailClient::connect(&p, &[("query", "{job=\"x\"}")]);
    let closed = client
        .wait_closed(WAIT)
        .expect("closed at the maximum duration");
    assert_eq!(closed.code, Some(1011));
    assert_eq!(closed.reason, "reached tail max duration limit");
    let metrics = p.metrics_text();
    assert_eq!(
        prom::find(&metrics, "loki_querier_tail_active", &[]),
        Some(0.0)
    );
}
