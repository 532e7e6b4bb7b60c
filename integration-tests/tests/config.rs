//! Configuration layering (defaults < YAML < env < flags), -config.expand-env,
//! startup failures, /config, signals.

use std::time::{Duration, Instant};

use sluice_integration_tests::*;

const STARTUP_FAIL_TIMEOUT: Duration = Duration::from_secs(20);

fn config_text(s: &SluiceProcess) -> String {
    let r = s.get("/config", &[], None);
    assert_eq!(r.status, 200, "/config: {:?}", r.body);
    r.body
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l.trim() == line)
}

#[test]
fn config_endpoint_shows_effective_values() {
    let s = SluiceProcess::start_default();
    let c = config_text(&s);
    let mut f = Failures::new();
    f.check(
        "http port",
        has_line(&c, &format!("http_listen_port: {}", s.http_port())),
        &c,
    );
    f.check(
        "grpc port",
        has_line(&c, &format!("grpc_listen_port: {}", s.grpc_port())),
        &c,
    );
    f.check("auth_enabled", has_line(&c, "auth_enabled: false"), &c);
    f.check(
        "path_prefix",
        c.contains(&s.dir().join("data").display().to_string()),
        &c,
    );
    f.finish();
}

#[test]
fn env_var_overrides_yaml() {
    let p = free_port();
    let s = SluiceProcess::start(
        SluiceOptions::new()
            .env("SLUICE_SERVER__HTTP_LISTEN_PORT", p.to_string())
            .expect_http_port(p),
    );
    assert_eq!(s.http_port(), p);
    let c = config_text(&s);
    assert!(
        has_line(&c, &format!("http_listen_port: {p}")),
        "/config should show env port {p}:\n{c}"
    );
}

#[test]
fn flag_overrides_env_and_yaml() {
    let env_port = free_port();
    let flag_port = free_port();
    let grpc_flag_port = free_port();
    let s = SluiceProcess::start(
        SluiceOptions::new()
            .env("SLUICE_SERVER__HTTP_LISTEN_PORT", env_port.to_string())
            .arg(format!("-server.http-listen-port={flag_port}"))
            .arg(format!("-server.grpc-listen-port={grpc_flag_port}"))
            .expect_http_port(flag_port)
            .expect_grpc_port(grpc_flag_port),
    );
    let c = config_text(&s);
    assert!(
        has_line(&c, &format!("http_listen_port: {flag_port}")),
        "flag port in /config:\n{c}"
    );
    assert!(
        has_line(&c, &format!("grpc_listen_port: {grpc_flag_port}")),
        "grpc flag port in /config:\n{c}"
    );
    assert!(
        port_open(grpc_flag_port),
        "gRPC should listen on the flag port {grpc_flag_port}"
    );
    assert!(
        !port_open(env_port),
        "nothing should listen on the overridden env port {env_port}"
    );
}

#[test]
fn env_var_for_auth_enabled_overrides_yaml() {
    let s = SluiceProcess::start(SluiceOptions::new().env("SLUICE_AUTH_ENABLED", "true"));
    let r = s.labels(&[], None);
    assert_eq!(
        (r.status, r.text()),
        (401, "no org id"),
        "auth enabled via env"
    );
}

#[test]
fn expand_env_substitutes_variables_and_defaults() {
    let http = free_port();
    let grpc = free_port();
    let yaml = format!(
        "auth_enabled: ${{IT_AUTH:-false}}\n\
         server:\n  http_listen_address: 127.0.0.1\n  http_listen_port: ${{IT_HTTP_PORT}}\n  \
         grpc_listen_address: 127.0.0.1\n  grpc_listen_port: ${{IT_GRPC_PORT_SURELY_UNSET:-{grpc}}}\n  \
         log_level: ${{IT_LOG_LEVEL:-not-a-level}}\n\
         common:\n  path_prefix: @DATA_DIR@\n"
    );
    let s = SluiceProcess::start(
        SluiceOptions::new()
            .yaml(yaml)
            .arg("-config.expand-env=true")
            .env("IT_HTTP_PORT", http.to_string())
            .env("IT_LOG_LEVEL", "debug")
            .expect_http_port(http)
            .expect_grpc_port(grpc),
    );
    let c = config_text(&s);
    let mut f = Failures::new();
    f.check(
        "${IT_HTTP_PORT}",
        has_line(&c, &format!("http_listen_port: {http}")),
        &c,
    );
    f.check(
        "${UNSET:-default}",
        has_line(&c, &format!("grpc_listen_port: {grpc}")),
        &c,
    );
    f.check(
        "${IT_LOG_LEVEL:-…} with the var set",
        has_line(&c, "log_level: debug"),
        &c,
    );
    f.check("${IT_AUTH:-false}", has_line(&c, "auth_enabled: false"), &c);
    f.check("gRPC listens", port_open(grpc), format!("port {grpc}"));
    f.finish();
}

fn expect_startup_failure(opts: SluiceOptions, must_name: &str) {
    let mut p = SluiceProcess::spawn(opts);
    let status = p.wait_exit(STARTUP_FAIL_TIMEOUT);
    let stderr = p.stderr_text();
    let stdout = p.stdout_text();
    let status = status.unwrap_or_else(|| {
        p.kill();
        panic!("sluice should exit with an error, still running after {STARTUP_FAIL_TIMEOUT:?}\nstderr: {stderr}")
    });
    assert!(
        !status.success(),
        "exit status should be non-zero, got {status}\nstderr: {stderr}"
    );
    assert!(
        stderr.contains(must_name),
        "stderr should name {must_name:?}; stderr:\n{}\nstdout:\n{}",
        tail(&stderr, 4000),
        tail(&stdout, 2000)
    );
}

#[test]
fn unknown_key_in_section_fails_startup_naming_it() {
    expect_startup_failure(
        SluiceOptions::new().yaml(
            "auth_enabled: false\nserver:\n  http_listen_address: 127.0.0.1\n  http_listen_port: @HTTP_PORT@\n  \
             grpc_listen_address: 127.0.0.1\n  grpc_listen_port: @GRPC_PORT@\n  no_such_server_key: 1\n\
             common:\n  path_prefix: @DATA_DIR@\n",
        ),
        "no_such_server_key",
    );
}

#[test]
fn unknown_top_level_section_fails_startup_naming_it() {
    expect_startup_failure(
        SluiceOptions::new().extra_yaml("bogus_section:\n  x: 1\n"),
        "bogus_section",
    );
}

#[test]
fn bad_value_fails_startup_naming_the_key() {
    expect_startup_failure(
        SluiceOptions::new().yaml(
            "auth_enabled: false\nserver:\n  http_listen_address: 127.0.0.1\n  http_listen_port: not-a-port\n  \
             grpc_listen_address: 127.0.0.1\n  grpc_listen_port: @GRPC_PORT@\n\
             common:\n  path_prefix: @DATA_DIR@\n",
        ),
        "http_listen_port",
    );
}

#[test]
fn bad_auth_enabled_value_fails_startup_naming_the_key() {
    expect_startup_failure(
        SluiceOptions::new().yaml(
            "auth_enabled: maybe\nserver:\n  http_listen_address: 127.0.0.1\n  http_listen_port: @HTTP_PORT@\n  \
             grpc_listen_address: 127.0.0.1\n  grpc_listen_port: @GRPC_PORT@\n\
             common:\n  path_prefix: @DATA_DIR@\n",
        ),
        "auth_enabled",
    );
}

#[test]
fn sigterm_exits_zero_promptly() {
    let mut s = SluiceProcess::start_default();
    let b = (now_ns() / SEC - 60) * SEC;
    s.push_proto_ok(
        &[Stream::new(r#"{job="term"}"#, [(b, "before shutdown")])],
        None,
    );
    let t0 = Instant::now();
    let status = s.terminate();
    let took = t0.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM exit status; stderr:\n{}",
        tail(&s.stderr_text(), 3000)
    );
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    assert!(!port_open(s.http_port()), "HTTP port closed after exit");
}

#[test]
fn sigint_exits_zero_promptly() {
    let mut s = SluiceProcess::start_default();
    let t0 = Instant::now();
    let status = s.interrupt();
    let took = t0.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGINT exit status; stderr:\n{}",
        tail(&s.stderr_text(), 3000)
    );
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
}

#[test]
fn log_level_flag_and_target_all_start() {
    let s = SluiceProcess::start(SluiceOptions::new().arg("-log.level=debug"));
    let r = s.ready();
    assert_eq!((r.status, r.text()), (200, "ready"));
    let c = config_text(&s);
    assert!(
        has_line(&c, "log_level: debug"),
        "/config shows the flag's log level:\n{c}"
    );
}

/// Loki's `storage_config.index_queries_cache_config` loads (a Loki config
/// must work unchanged) and the process says it does not use it.
#[test]
fn lokis_index_queries_cache_block_loads_with_a_warning() {
    let s = SluiceProcess::start(SluiceOptions::new().extra_yaml(
        "storage_config:\n  index_queries_cache_config:\n    memcached_client:\n      \
         addresses: [127.0.0.1:11211]\n      timeout: 500ms\n",
    ));
    assert_eq!(s.get("/ready", &[], None).status, 200);
    let stderr = s.stderr_text();
    assert!(
        stderr.contains("index_queries_cache_config is not used"),
        "no warning about the unused index queries cache:\n{}",
        tail(&stderr, 2000)
    );
}
