//! The delete API end to end at the library level: Loki's validation
//! messages, listing, cancellation within and after the cancel period, and
//! processing that removes exactly the lines the query matches.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use sluice_common::{DeletionMode, LimitsConfig};
use sluice_compactor::{Compactor, CompactorConfig, ManualClock};
use support::*;
use tower::ServiceExt;

const TENANT: &str = "team-a";

async fn call(
    compactor: &Arc<Compactor>,
    method: &str,
    uri: &str,
    form: Option<&str>,
    tenant: Option<&str>,
) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(tenant) = tenant {
        request = request.header("X-Scope-OrgID", tenant);
    }
    let body = match form {
        Some(form) => {
            request = request.header("Content-Type", "application/x-www-form-urlencoded");
            Body::from(form.to_string())
        }
        None => Body::empty(),
    };
    let response = compactor
        .router(true)
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

fn encode(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn dataset() -> Dataset {
    let mut data = Dataset::new();
    for (index, stream) in [
        r#"{job="app", pod="a"}"#,
        r#"{job="app", pod="b"}"#,
        r#"{job="other"}"#,
    ]
    .iter()
    .enumerate()
    {
        let entries = (0..2 * 144)
            .map(|step| {
                let ts = T0 - 2 * DAY + step * 10 * 60 * SECOND + index as i64 * SECOND;
                let line = if step % 5 == 0 {
                    format!("user=bob secret=hunter{step}")
                } else {
                    format!("user=bob action=view step={step}")
                };
                (ts, line)
            })
            .collect();
        data.insert(labels(stream), entries);
    }
    data
}

fn config() -> CompactorConfig {
    CompactorConfig {
        retention_enabled: true,
        ..CompactorConfig::default()
    }
}

async fn everything(test: &TestStore) -> Dataset {
    query(
        &test.index_cache(),
        TENANT,
        r#"{job=~".+"}"#,
        T0 - 3 * DAY,
        T0 + DAY,
    )
    .await
}

#[tokio::test]
async fn bad_requests_get_lokis_messages() {
    let test = TestStore::new();
    let clock = Arc::new(ManualClock::new(T0));
    let compactor = test.compactor(config(), LimitsConfig::default(), clock);
    let post = |form: String| {
        let compactor = Arc::clone(&compactor);
        async move {
            call(
                &compactor,
                "POST",
                "/loki/api/v1/delete",
                Some(&form),
                Some(TENANT),
            )
            .await
        }
    };
    let start = (T0 / SECOND - 3600).to_string();
    let cases: Vec<(String, &str)> = vec![
        (encode(&[("start", &start)]), "query not set\n"),
        (
            encode(&[("query", r#"{job="app"} | json"#), ("start", &start)]),
            "invalid query expression: ",
        ),
        (
            encode(&[("query", "{job=}"), ("start", &start)]),
            "invalid query expression: ",
        ),
        (
            encode(&[("query", r#"{job="app"}"#)]),
            "start time not set\n",
        ),
        (
            encode(&[("query", r#"{job="app"}"#), ("start", "yesterday")]),
            "invalid start time: require unix seconds or RFC3339 format\n",
        ),
        (
            encode(&[
                ("query", r#"{job="app"}"#),
                ("start", &start),
                ("end", "12"),
            ]),
            "invalid end time: require unix seconds or RFC3339 format\n",
        ),
        (
            encode(&[
                ("query", r#"{job="app"}"#),
                ("start", &start),
                ("end", &(T0 / SECOND + 60).to_string()),
            ]),
            "deletes in the future are not allowed\n",
        ),
        (
            encode(&[
                ("query", r#"{job="app"}"#),
                ("start", &start),
                ("end", &(T0 / SECOND - 7200).to_string()),
            ]),
            "start time can't be greater than end time\n",
        ),
        (
            encode(&[
                ("query", r#"{job="app"}"#),
                ("start", &start),
                ("max_interval", "5x"),
            ]),
            "invalid max_interval: valid time units are 's', 'm', 'h'\n",
        ),
    ];
    for (form, expected) in cases {
        let (status, body) = post(form.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form}: {body}");
        assert!(body.starts_with(expected), "{form}: {body:?}");
    }
    let (status, body) = call(&compactor, "GET", "/loki/api/v1/delete", None, None).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, "no org id\n")
    );
    let (status, body) = call(
        &compactor,
        "DELETE",
        "/loki/api/v1/delete?request_id=deadbeef",
        None,
        Some(TENANT),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::NOT_FOUND,
            "could not find delete request with given id\n"
        )
    );
    // Nothing was stored.
    let (status, body) = call(&compactor, "GET", "/loki/api/v1/delete", None, Some(TENANT)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "[]\n"));

    // A tenant whose deletion mode is disabled is refused.
    let disabled = test.compactor(
        config(),
        LimitsConfig {
            deletion_mode: DeletionMode::Disabled,
            ..LimitsConfig::default()
        },
        Arc::new(ManualClock::new(T0)),
    );
    let (status, body) = call(&disabled, "GET", "/loki/api/v1/delete", None, Some(TENANT)).await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::FORBIDDEN,
            "deletion is not available for this tenant\n"
        )
    );
}

#[tokio::test]
async fn cancel_within_the_period_then_process_exactly_the_matching_lines() {
    let test = TestStore::new();
    let data = dataset();
    load(&test.store, TENANT, &data, 3 * HOUR, 3).await;
    let clock = Arc::new(ManualClock::new(T0));
    let compactor = test.compactor(config(), LimitsConfig::default(), Arc::clone(&clock));

    // A request, listed, cancelled within the period.
    let start_s = (T0 - 36 * HOUR) / SECOND;
    let end_s = (T0 - 12 * HOUR) / SECOND;
    let form = encode(&[
        ("query", r#"{job="app"} |= "secret""#),
        ("start", &start_s.to_string()),
        ("end", &end_s.to_string()),
    ]);
    let (status, _) = call(
        &compactor,
        "POST",
        "/loki/api/v1/delete",
        Some(&form),
        Some(TENANT),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(&compactor, "GET", "/loki/api/v1/delete", None, Some(TENANT)).await;
    assert_eq!(status, StatusCode::OK);
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let first = &listed[0];
    assert_eq!(first["status"], "received");
    assert_eq!(first["query"], r#"{job="app"} |= "secret""#);
    assert_eq!(first["start_time"], start_s);
    assert_eq!(first["end_time"], end_s);
    assert_eq!(first["created_at"], T0 / SECOND);
    let id = first["request_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 8);
    // Not due yet: a run leaves everything in place.
    let report = compactor.run_once().await.unwrap();
    assert_eq!(report.delete_requests_processed, 0);
    clock.advance(Duration::from_secs(3600));
    let (status, _) = call(
        &compactor,
        "DELETE",
        &format!("/loki/api/v1/delete?request_id={id}"),
        None,
        Some(TENANT),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = call(&compactor, "GET", "/loki/api/v1/delete", None, Some(TENANT)).await;
    assert_eq!(body, "[]\n");

    // Two requests: line-filtered over part of two streams, and a whole
    // range of one pod without filter.
    let (status, _) = call(
        &compactor,
        "POST",
        "/loki/api/v1/delete",
        Some(&form),
        Some(TENANT),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let pod_start = "2024-03-30T07:00:00Z";
    let pod_end = "2024-03-30T15:30:00Z";
    let pod_form = encode(&[
        ("query", r#"{pod="b"}"#),
        ("start", pod_start),
        ("end", pod_end),
    ]);
    let (status, _) = call(
        &compactor,
        "PUT",
        "/loki/api/v1/delete",
        Some(&pod_form),
        Some(TENANT),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Past the 24h cancel period: cancelling needs force.
    clock.advance(Duration::from_secs(25 * 3600));
    let (_, body) = call(&compactor, "GET", "/loki/api/v1/delete", None, Some(TENANT)).await;
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let late_id = listed[1]["request_id"].as_str().unwrap().to_string();
    let (status, body) = call(
        &compactor,
        "DELETE",
        &format!("/loki/api/v1/delete?request_id={late_id}"),
        None,
        Some(TENANT),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("past the deadline of 24h0m0s"), "{body}");

    let report = compactor.run_once().await.unwrap();
    assert_eq!(report.failures, 0);
    assert_eq!(report.delete_requests_processed, 2, "{report:?}");
    assert!(report.chunks_rewritten > 0, "{report:?}");
    let (_, body) = call(&compactor, "GET", "/loki/api/v1/delete", None, Some(TENANT)).await;
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .all(|request| request["status"] == "processed"));
    let (status, body) = call(
        &compactor,
        "DELETE",
        &format!("/loki/api/v1/delete?request_id={late_id}&force=true"),
        None,
        Some(TENANT),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::BAD_REQUEST,
            "deletion of request which is in process or already processed is not allowed\n"
        )
    );

    // Exactly the matching lines are gone.
    let (filter_from, filter_to) = (start_s * SECOND, end_s * SECOND);
    let (pod_from, pod_to) = (
        chrono::DateTime::parse_from_rfc3339(pod_start)
            .unwrap()
            .timestamp()
            * SECOND,
        chrono::DateTime::parse_from_rfc3339(pod_end)
            .unwrap()
            .timestamp()
            * SECOND,
    );
    let mut expected = Dataset::new();
    let mut removed = 0;
    for (stream, entries) in &data {
        let text = stream.to_string();
        let kept: Vec<(i64, String)> = entries
            .iter()
            .filter(|(ts, line)| {
                let filtered = text.contains(r#"job="app""#)
                    && line.contains("secret")
                    && (filter_from..=filter_to).contains(ts);
                let pod = text.contains(r#"pod="b""#) && (pod_from..=pod_to).contains(ts);
                !(filtered || pod)
            })
            .cloned()
            .collect();
        removed += entries.len() - kept.len();
        expected.insert(stream.clone(), kept);
    }
    assert!(removed > 20, "the requests must cover something: {removed}");
    assert_same(
        &[everything(&test).await],
        &[expected.clone()],
        "after processing",
    );
    assert_eq!(report.lines_deleted, removed as u64);

    // Later runs change nothing; once the delay passes the replaced
    // chunks are deleted and reads still see the same lines.
    clock.advance(Duration::from_secs(3 * 3600));
    let report = compactor.run_once().await.unwrap();
    assert!(report.chunks_swept > 0, "{report:?}");
    assert_eq!(report.chunks_rewritten, 0);
    assert_no_dangling_refs(&test, TENANT).await;
    assert_same(&[everything(&test).await], &[expected], "after the sweep");
}
