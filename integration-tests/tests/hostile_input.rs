//! Hostile input: oversized bodies refused before they are read,
//! decompression bombs refused without inflating them, deeply nested and
//! huge LogQL refused with 400 (the server stays up), slow clients timed
//! out, and gRPC messages over `grpc_server_max_recv_msg_size` refused.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sluice_integration_tests::*;

const LIMIT: usize = 1 << 20;

fn base() -> i64 {
    (now_ns() / SEC - 600) * SEC
}

/// A server whose push bodies may be at most 1 MiB.
fn small_body_server() -> SluiceProcess {
    SluiceProcess::start(
        SluiceOptions::new().extra_yaml(&format!("distributor:\n  max_recv_msg_size: {LIMIT}\n")),
    )
}

/// Sends `request` on a fresh connection (write errors ignored: the server
/// may hang up early) and reads until `done` says the reply is complete,
/// the server closes, or 10 s pass. Returns what arrived and whether the
/// server closed the connection.
fn raw_exchange(port: u16, request: &[&[u8]], done: impl Fn(&str) -> bool) -> (String, bool) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    for part in request {
        if stream.write_all(part).is_err() {
            break;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reply = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return (String::from_utf8_lossy(&reply).into_owned(), true),
            Ok(n) => reply.extend_from_slice(&buffer[..n]),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (String::from_utf8_lossy(&reply).into_owned(), true),
        }
        let text = String::from_utf8_lossy(&reply).into_owned();
        if done(&text) {
            return (text, false);
        }
        if Instant::now() >= deadline {
            return (text, false);
        }
    }
}

/// The server still answers and stores after the abuse.
fn assert_still_serving(s: &SluiceProcess, what: &str) {
    let r = s.ready();
    assert_eq!((r.status, r.text()), (200, "ready"), "{what}: /ready");
    let b = base();
    s.push_proto_ok(
        &[Stream::new(r#"{job="after"}"#, [(b, "still here")])],
        None,
    );
    assert_eq!(
        s.read_all(r#"{job="after"}"#, b, b + SEC, None),
        StreamSet::from([(
            labels(&[("job", "after")]),
            vec![(b, "still here".to_string())]
        )]),
        "{what}: push and query after"
    );
}

#[test]
fn announced_oversized_body_is_refused_before_it_is_read() {
    let s = small_body_server();
    // Headers only: the 200 MB body is never sent, so an answer proves the
    // server did not wait to read it.
    let head = "POST /loki/api/v1/push HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/x-protobuf\r\nContent-Length: 209715200\r\n\r\n";
    let want = format!("message size 209715200 bytes is larger than the limit of {LIMIT} bytes");
    let (reply, _) = raw_exchange(s.http_port(), &[head.as_bytes()], |text| {
        text.contains(&want)
    });
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains(&want), "{reply}");
    assert_still_serving(&s, "after a 200 MB announcement");
}

#[test]
fn streamed_oversized_body_is_refused() {
    let s = small_body_server();
    let head = "POST /loki/api/v1/push HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n";
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "z".repeat(64 * 1024));
    let mut request: Vec<&[u8]> = vec![head.as_bytes()];
    // 2 MiB in 64 KiB chunks, never terminated.
    for _ in 0..32 {
        request.push(chunk.as_bytes());
    }
    let want = format!("request body is larger than the limit of {LIMIT} bytes");
    let (reply, _) = raw_exchange(s.http_port(), &request, |text| text.contains(&want));
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains(&want), "{reply}");
    assert_still_serving(&s, "after a 2 MiB chunked body");
}

#[test]
fn decompression_bombs_are_refused_without_inflating_them() {
    let s = small_body_server();
    let mut f = Failures::new();
    // 64 MiB of zeros gzip to ~64 KiB.
    let zeros = vec![0u8; 64 << 20];
    let bomb = gzip(&zeros);
    assert!(bomb.len() < LIMIT);
    let over = format!(
        "message size {} bytes is larger than the limit of {LIMIT} bytes",
        LIMIT + 1
    );
    let r = s.push_raw(bomb.clone(), Some("application/json"), Some("gzip"), None);
    f.resp("gzip bomb, JSON", &r, 413, |text| text == over, &over);
    let r = s.push_raw(bomb, Some("application/x-protobuf"), Some("gzip"), None);
    f.resp("gzip bomb, protobuf", &r, 413, |text| text == over, &over);
    // A snappy block whose header claims 1 GiB: refused on the header.
    let mut snappy_claim = vec![0x80, 0x80, 0x80, 0x80, 0x04];
    snappy_claim.extend_from_slice(&[0u8; 64]);
    let want = format!("message size 1073741824 bytes is larger than the limit of {LIMIT} bytes");
    let r = s.push_raw(snappy_claim, Some("application/x-protobuf"), None, None);
    f.resp("snappy claiming 1 GiB", &r, 413, |text| text == want, &want);
    // A real snappy body decompressing past the limit.
    let r = s.push_raw(
        snappy(&zeros[..2 * LIMIT]),
        Some("application/x-protobuf"),
        None,
        None,
    );
    let want = format!(
        "message size {} bytes is larger than the limit of {LIMIT} bytes",
        2 * LIMIT
    );
    f.resp("snappy of 2 MiB", &r, 413, |text| text == want, &want);
    f.finish();
    assert_still_serving(&s, "after decompression bombs");
}

#[test]
fn deeply_nested_and_huge_queries_are_refused_with_400() {
    let s = SluiceProcess::start_default();
    let mut f = Failures::new();
    let depth = 20_000;
    let cases = [
        (
            "parentheses",
            format!("{}vector(1){}", "(".repeat(depth), ")".repeat(depth)),
        ),
        (
            "nested aggregations",
            format!(
                "{}count_over_time({{a=\"b\"}}[1m]){}",
                "sum(".repeat(depth / 4),
                ")".repeat(depth / 4)
            ),
        ),
        (
            "nested label filters",
            format!(
                "{{a=\"b\"}} | {}x=\"1\"{}",
                "(".repeat(depth),
                ")".repeat(depth)
            ),
        ),
        (
            "a long binary chain",
            format!("vector(1){}", " + vector(1)".repeat(depth / 2)),
        ),
        ("unclosed parentheses", "(".repeat(depth)),
        ("unary minus soup", format!("{}1", "-".repeat(depth))),
    ];
    for (name, query) in &cases {
        assert!(query.len() < 128 << 10, "{name} stays under the size limit");
        for endpoint in ["/loki/api/v1/query", "/loki/api/v1/query_range"] {
            // POST as a form, as Grafana does for long queries.
            let r = s.send(
                s.client()
                    .post(format!("{}{endpoint}", s.http_url()))
                    .form(&[("query", query.as_str())]),
            );
            f.resp(
                &format!("{name} on {endpoint}"),
                &r,
                400,
                |text| !text.is_empty() && text.len() < 4096,
                "400 with a short message",
            );
        }
    }
    let huge = format!("{{a=\"b\"}} |= \"{}\"", "x".repeat(200 << 10));
    let r = s.send(
        s.client()
            .post(format!("{}/loki/api/v1/query_range", s.http_url()))
            .form(&[("query", huge.as_str())]),
    );
    let want = format!(
        "query too large: {} bytes exceeds the limit of 131072 bytes",
        huge.len()
    );
    f.resp("a 200 KiB query", &r, 400, |text| text == want, &want);
    let r = s.send(
        s.client()
            .post(format!("{}/loki/api/v1/series", s.http_url()))
            .form(&[("match[]", huge.as_str())]),
    );
    f.resp(
        "a 200 KiB series selector",
        &r,
        400,
        |text| text == want,
        &want,
    );
    f.finish();
    assert_still_serving(&s, "after hostile queries");
}

#[test]
fn slow_clients_are_timed_out() {
    let s = SluiceProcess::start(SluiceOptions::new().arg("-server.http-read-timeout=1s"));
    // Headers that never finish: the server hangs up (hyper may first
    // answer 408).
    let (reply, closed) = raw_exchange(
        s.http_port(),
        &[b"POST /loki/api/v1/push HTTP/1.1\r\nHost: sluice\r\nContent-Ty"],
        |_| false,
    );
    assert!(closed, "slow headers: connection still open, got {reply:?}");
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
        "{reply}"
    );
    // A body that never finishes: refused once the read timeout passes.
    let want = "request body not received within the server's read timeout";
    let (reply, _) = raw_exchange(
        s.http_port(),
        &[b"POST /loki/api/v1/push HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"streams\":"],
        |text| text.contains(want),
    );
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains(want), "{reply}");
    // A prompt client on the same server is served.
    assert_still_serving(&s, "after slow clients");
}

/// A gRPC unary call over HTTP/2 without TLS, framed by hand; returns the
/// HTTP status and the `grpc-status` / `grpc-message` of a trailers-only
/// reply (what an error before the handler runs looks like).
fn grpc_push(port: u16, tenant: &str, message: &[u8]) -> (u16, Option<String>, String) {
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http2 client");
    let mut body = Vec::with_capacity(message.len() + 5);
    body.push(0);
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(message);
    let response = client
        .post(format!("http://127.0.0.1:{port}/logproto.Pusher/Push"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("x-scope-orgid", tenant)
        .body(body)
        .send()
        .expect("gRPC call");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    let status = header("grpc-status");
    let message = header("grpc-message").unwrap_or_default();
    (response.status().as_u16(), status, message)
}

#[test]
fn grpc_messages_over_the_receive_limit_are_refused() {
    let s = SluiceProcess::start(
        SluiceOptions::new().arg("-server.grpc-max-recv-msg-size-bytes=65536"),
    );
    let b = base();
    let small = proto_push_bytes(&[Stream::new(r#"{job="grpc"}"#, [(b, "fits")])]);
    let (http_status, _, _) = grpc_push(s.grpc_port(), "fake", &small);
    assert_eq!(http_status, 200);
    let big_line = "g".repeat(100 << 10);
    let big = proto_push_bytes(&[Stream::new(r#"{job="grpc"}"#, [(b + 1, big_line.as_str())])]);
    let (http_status, grpc_status, message) = grpc_push(s.grpc_port(), "fake", &big);
    assert_eq!(http_status, 200);
    // OUT_OF_RANGE (11) from tonic's decoder, naming both sizes.
    assert_eq!(grpc_status.as_deref(), Some("11"), "{message}");
    assert!(
        message.contains(&big.len().to_string()) && message.contains("65536"),
        "{message}"
    );
    let stored = s.read_all(r#"{job="grpc"}"#, b, b + SEC, None);
    assert_eq!(
        stored,
        StreamSet::from([(labels(&[("job", "grpc")]), vec![(b, "fits".to_string())])]),
        "the small message is stored, the big one is not"
    );
}
