//! Black-box integration test harness for the `sluice` binary.
//!
//! The harness treats Sluice purely as an external process speaking the Loki
//! HTTP API (see `shared/reference/loki-compat.md` §1–§2). It never links any
//! Sluice crate: pushes are encoded with the independent crates.io `loki-api`
//! protobuf types and `snap::raw::Encoder`, results are read as plain JSON.
//!
//! Main entry points:
//! - [`sluice_bin`]: path of the binary (`SLUICE_BIN`, or built once with cargo);
//!   [`loadgen_bin`] likewise for `sluice-loadgen` (`SLUICE_LOADGEN_BIN`).
//! - [`SluiceProcess::start`]: spawn a server on free loopback ports with its own
//!   temp dir and config, wait for `/ready`; [`SluiceProcess::spawn`] spawns
//!   without waiting (for startup-failure tests).
//! - [`SluiceProcess::restart`] / [`SluiceProcess::respawn`]: start the same
//!   process again on the same ports, config and data dir (crash/restart
//!   tests); [`SluiceOptions::target`] for `-target=querier` etc.
//! - [`durable`]: data sets, exact-once read-back checks, metric polling, WAL
//!   and chunk-store file helpers; [`s3`]: an in-process S3 server;
//!   [`live_tail`]: a WebSocket client for `/loki/api/v1/tail`; [`monitoring`]:
//!   a real Alertmanager and Prometheus for the ruler tests; [`otlp`]: an
//!   OTLP trace receiver (gRPC and HTTP).
//! - HTTP helpers on [`SluiceProcess`] returning [`Resp`] (status + body).
//! - [`Stream`] / [`proto_push_body`] / [`json_stream`] to build push bodies.
//! - [`parse_streams`] to validate and read a `streams` query result.
//! - [`prom`] a tiny Prometheus text-format parser.
//! - Time helpers: [`now_ns`], [`rfc3339_nano`], [`SEC`].
//!
//! Every wait in here is bounded, and only 127.0.0.1 is ever contacted.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use serde_json::{json, Value};

pub mod cluster;
pub mod durable;
pub mod live_tail;
pub mod monitoring;
pub mod otlp;
pub mod s3;

/// One second in nanoseconds.
pub const SEC: i64 = 1_000_000_000;

/// How long [`SluiceProcess::start`] waits for `/ready` to answer 200.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`SluiceProcess::terminate`] waits for the process to exit.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// Longest time the harness waits for `cargo build -p sluice`.
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

// ---------------------------------------------------------------------------
// Binary location
// ---------------------------------------------------------------------------

/// The workspace root (the parent of this package's manifest directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration-tests has a parent directory")
        .to_path_buf()
}

/// Path of the `sluice` binary under test.
///
/// `SLUICE_BIN` wins when set. Otherwise the binary is built once per test
/// process with `$CARGO build -p sluice --bin sluice` (falling back to `cargo`)
/// and taken from `<target dir>/debug/sluice`, the target dir being
/// `CARGO_TARGET_DIR` or `<workspace root>/target`. The build is bounded in
/// time; on failure this panics.
pub fn sluice_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| cargo_binary("SLUICE_BIN", "sluice", "sluice"))
}

/// Path of the `sluice-loadgen` binary: `SLUICE_LOADGEN_BIN` when set,
/// otherwise built once like [`sluice_bin`].
pub fn loadgen_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| cargo_binary("SLUICE_LOADGEN_BIN", "sluice-loadgen", "sluice-loadgen"))
}

/// `$env_var` if set, else `bin` of `package` built with cargo (bounded in
/// time; panics on failure).
fn cargo_binary(env_var: &str, package: &str, bin: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{env_var}={} is not a file", p.display());
        return p;
    }
    let root = workspace_root();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => {
            let t = PathBuf::from(t);
            if t.is_absolute() {
                t
            } else {
                root.join(t)
            }
        }
        None => root.join("target"),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(&cargo)
        .args(["build", "-p", package, "--bin", bin])
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", &target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cargo:?} build -p {package}: {e}"));
    let deadline = Instant::now() + BUILD_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("cargo build -p {package} did not finish within {BUILD_TIMEOUT:?}");
            }
            Err(e) => panic!("waiting for cargo build failed: {e}"),
        }
    };
    assert!(
        status.success(),
        "cargo build -p {package} failed: {status}"
    );
    let path = target.join("debug").join(bin);
    assert!(
        path.is_file(),
        "built binary not found at {}",
        path.display()
    );
    path
}

/// A loopback TCP port that was free a moment ago and that this test process
/// has not handed out before (so parallel tests don't collide with each other).
pub fn free_port() -> u16 {
    static USED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    for _ in 0..200 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        drop(listener);
        let mut used = USED.lock().unwrap_or_else(|e| e.into_inner());
        if used.insert(port) {
            return port;
        }
    }
    panic!("could not find a free loopback port");
}

// ---------------------------------------------------------------------------
// Process management
// ---------------------------------------------------------------------------

/// How to start a Sluice process. Build with [`SluiceOptions::new`] and the
/// chained setters.
#[derive(Clone, Debug, Default)]
pub struct SluiceOptions {
    /// `auth_enabled` in the generated YAML.
    pub auth_enabled: bool,
    /// Text appended verbatim to the generated YAML (new top-level sections).
    pub extra_yaml: String,
    /// Extra command-line arguments, after `-config.file=… -target=all`.
    pub extra_args: Vec<String>,
    /// Extra environment variables for the child (all inherited `SLUICE_*`
    /// variables are removed first).
    pub extra_env: Vec<(String, String)>,
    /// Full YAML text replacing the generated config. The placeholders
    /// `@HTTP_PORT@`, `@GRPC_PORT@` and `@DATA_DIR@` are substituted.
    pub yaml: Option<String>,
    /// Port the server is expected to serve HTTP on (for readiness and
    /// requests) when it differs from the one written in the YAML, e.g. when
    /// an env var or flag overrides it.
    pub expect_http_port: Option<u16>,
    /// Same as `expect_http_port` for gRPC.
    pub expect_grpc_port: Option<u16>,
    /// `-target=` value (default `all`).
    pub target: Option<String>,
}

impl SluiceOptions {
    /// Default options: auth disabled, generated YAML, no extras.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set `auth_enabled`.
    pub fn auth(mut self, enabled: bool) -> Self {
        self.auth_enabled = enabled;
        self
    }
    /// Append YAML text to the generated config.
    pub fn extra_yaml(mut self, yaml: &str) -> Self {
        self.extra_yaml.push_str(yaml);
        self
    }
    /// Add a command-line argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.extra_args.push(a.into());
        self
    }
    /// Add an environment variable.
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.extra_env.push((k.into(), v.into()));
        self
    }
    /// Replace the whole YAML config (placeholders, see [`SluiceOptions::yaml`]).
    pub fn yaml(mut self, yaml: impl Into<String>) -> Self {
        self.yaml = Some(yaml.into());
        self
    }
    /// Expect HTTP on this port instead of the YAML one.
    pub fn expect_http_port(mut self, port: u16) -> Self {
        self.expect_http_port = Some(port);
        self
    }
    /// Expect gRPC on this port instead of the YAML one.
    pub fn expect_grpc_port(mut self, port: u16) -> Self {
        self.expect_grpc_port = Some(port);
        self
    }
    /// Run these modules (`-target=<target>`) instead of `all`.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
}

/// The YAML config the harness writes by default.
pub fn default_yaml(auth_enabled: bool, http_port: u16, grpc_port: u16, data_dir: &str) -> String {
    format!(
        "auth_enabled: {auth_enabled}\n\
         server:\n  http_listen_address: 127.0.0.1\n  http_listen_port: {http_port}\n  \
         grpc_listen_address: 127.0.0.1\n  grpc_listen_port: {grpc_port}\n  log_level: info\n\
         common:\n  path_prefix: {data_dir}\n"
    )
}

/// A running (or exited) Sluice child process with its own temp directory.
/// Dropping it kills the process (SIGKILL) and removes the directory.
pub struct SluiceProcess {
    child: Child,
    exit: Option<ExitStatus>,
    http_port: u16,
    grpc_port: u16,
    client: reqwest::blocking::Client,
    opts: SluiceOptions,
    starts: u32,
    // Declared last so it is removed after the process is gone.
    dir: tempfile::TempDir,
}

/// Build a blocking HTTP client that talks to loopback only (no proxies).
pub fn http_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("build reqwest client")
}

impl SluiceProcess {
    /// Start with default options and wait until ready.
    pub fn start_default() -> Self {
        Self::start(SluiceOptions::new())
    }

    /// Spawn and wait (≤ [`READY_TIMEOUT`]) for `GET /ready` → 200; panics
    /// with the captured stderr if that does not happen.
    pub fn start(opts: SluiceOptions) -> Self {
        let mut p = Self::spawn(opts);
        if let Err(e) = p.wait_ready(READY_TIMEOUT) {
            let stderr = p.stderr_text();
            let stdout = p.stdout_text();
            p.kill();
            panic!(
                "sluice did not become ready: {e}\n--- config ---\n{}\n--- stderr ---\n{}\n--- stdout ---\n{}",
                std::fs::read_to_string(p.config_path()).unwrap_or_default(),
                tail(&stderr, 8000),
                tail(&stdout, 4000)
            );
        }
        p
    }

    /// Spawn without waiting for readiness.
    pub fn spawn(opts: SluiceOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sluice-it-")
            .tempdir()
            .expect("create tempdir");
        let http_port = free_port();
        let grpc_port = free_port();
        let data_dir = dir.path().join("data");
        let data_dir_s = data_dir.to_str().expect("utf-8 tempdir").to_string();
        let yaml = match &opts.yaml {
            Some(y) => y
                .replace("@HTTP_PORT@", &http_port.to_string())
                .replace("@GRPC_PORT@", &grpc_port.to_string())
                .replace("@DATA_DIR@", &data_dir_s),
            None => {
                let mut y = default_yaml(opts.auth_enabled, http_port, grpc_port, &data_dir_s);
                y.push_str(&opts.extra_yaml);
                y
            }
        };
        let config_path = dir.path().join("config.yaml");
        File::create(&config_path)
            .and_then(|mut f| f.write_all(yaml.as_bytes()))
            .expect("write config");
        let child = spawn_child(dir.path(), &opts, false);
        SluiceProcess {
            child,
            exit: None,
            http_port: opts.expect_http_port.unwrap_or(http_port),
            grpc_port: opts.expect_grpc_port.unwrap_or(grpc_port),
            client: http_client(),
            opts,
            starts: 1,
            dir,
        }
    }

    /// Start the process again after it exited (or SIGKILL it first): same
    /// binary, config file, ports, directory and `path_prefix`, so on-disk
    /// state (WAL, chunks, index) is reused. stdout/stderr are appended to,
    /// after a `--- restart ---` line. Does not wait for readiness.
    pub fn respawn(&mut self) {
        self.kill();
        self.starts += 1;
        self.child = spawn_child(self.dir.path(), &self.opts, true);
        self.exit = None;
    }

    /// [`SluiceProcess::respawn`], then wait (≤ [`READY_TIMEOUT`]) for
    /// `/ready`; panics with the captured stderr if it does not come.
    pub fn restart(&mut self) {
        self.respawn();
        if let Err(e) = self.wait_ready(READY_TIMEOUT) {
            let stderr = self.stderr_text();
            self.kill();
            panic!(
                "sluice did not become ready after restart: {e}\n--- stderr ---\n{}",
                tail(&stderr, 8000)
            );
        }
    }

    /// How many times this process was started (1 + restarts).
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// The default `common.path_prefix` (`<dir>/data`) of the generated YAML.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Poll `GET /ready` until it answers 200 with body `ready`, the process
    /// exits, or `timeout` passes.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(1))
            .build()
            .expect("client");
        let mut last;
        loop {
            if let Some(status) = self.try_wait() {
                return Err(format!("process exited early with {status}"));
            }
            match client.get(format!("{}/ready", self.http_url())).send() {
                Ok(r) => {
                    let code = r.status().as_u16();
                    let body = r.text().unwrap_or_default();
                    if code == 200 && body.trim() == "ready" {
                        return Ok(());
                    }
                    last = format!("/ready answered {code} {body:?}");
                }
                Err(e) => last = format!("/ready request failed: {e}"),
            }
            if Instant::now() >= deadline {
                return Err(format!("not ready after {timeout:?}; last: {last}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }
    /// HTTP port the harness talks to.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }
    /// `127.0.0.1:<grpc port>`.
    pub fn grpc_addr(&self) -> String {
        format!("127.0.0.1:{}", self.grpc_port)
    }
    /// gRPC port.
    pub fn grpc_port(&self) -> u16 {
        self.grpc_port
    }
    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    /// The process's private temp directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// Path of the YAML config written for this process.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }
    /// Everything the process wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }
    /// Everything the process wrote to stdout so far.
    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    /// Non-blocking: the exit status if the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.exit = Some(s);
            }
        }
        self.exit
    }

    /// Wait up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send a signal to the process (no-op once it has exited).
    pub fn signal(&mut self, sig: nix::sys::signal::Signal) {
        if self.try_wait().is_some() {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, sig);
    }

    /// SIGTERM, then wait up to [`EXIT_TIMEOUT`]; returns the exit status.
    /// Panics (after SIGKILL) if the process does not exit in time.
    pub fn terminate(&mut self) -> ExitStatus {
        self.stop_with(nix::sys::signal::Signal::SIGTERM)
    }

    /// SIGINT, then like [`SluiceProcess::terminate`].
    pub fn interrupt(&mut self) -> ExitStatus {
        self.stop_with(nix::sys::signal::Signal::SIGINT)
    }

    fn stop_with(&mut self, sig: nix::sys::signal::Signal) -> ExitStatus {
        self.signal(sig);
        match self.wait_exit(EXIT_TIMEOUT) {
            Some(s) => s,
            None => {
                self.kill();
                panic!(
                    "sluice did not exit within {EXIT_TIMEOUT:?} after {sig}\n--- stderr ---\n{}",
                    tail(&self.stderr_text(), 4000)
                );
            }
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if self.try_wait().is_none() {
            let _ = self.child.kill();
            if let Ok(s) = self.child.wait() {
                self.exit = Some(s);
            }
        }
    }

    // -- HTTP -------------------------------------------------------------

    /// The HTTP client used by the helpers (loopback only, 20 s timeout).
    pub fn client(&self) -> &reqwest::blocking::Client {
        &self.client
    }

    /// Send a prepared request and collect the response (panics with the
    /// server's stderr tail if the request itself fails, e.g. connection reset).
    pub fn send(&self, rb: reqwest::blocking::RequestBuilder) -> Resp {
        match rb.send() {
            Ok(r) => Resp::from_response(r),
            Err(e) => panic!(
                "request failed: {e}\n--- sluice stderr (tail) ---\n{}",
                tail(&self.stderr_text(), 4000)
            ),
        }
    }

    /// GET `path` with query parameters (repeated keys allowed) and an
    /// optional `X-Scope-OrgID`.
    pub fn get(&self, path: &str, params: &[(&str, &str)], tenant: Option<&str>) -> Resp {
        let mut rb = self
            .client
            .get(format!("{}{}", self.http_url(), path))
            .query(params);
        if let Some(t) = tenant {
            rb = rb.header("X-Scope-OrgID", t);
        }
        self.send(rb)
    }

    /// POST a raw body to `/loki/api/v1/push` with the given headers.
    pub fn push_raw(
        &self,
        body: Vec<u8>,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        tenant: Option<&str>,
    ) -> Resp {
        let mut rb = self
            .client
            .post(format!("{}/loki/api/v1/push", self.http_url()))
            .body(body);
        if let Some(ct) = content_type {
            rb = rb.header("Content-Type", ct);
        }
        if let Some(ce) = content_encoding {
            rb = rb.header("Content-Encoding", ce);
        }
        if let Some(t) = tenant {
            rb = rb.header("X-Scope-OrgID", t);
        }
        self.send(rb)
    }

    /// Push streams as snappy-compressed protobuf (`application/x-protobuf`),
    /// encoded with the crates.io `loki-api` types, like promtail does.
    pub fn push_proto(&self, streams: &[Stream], tenant: Option<&str>) -> Resp {
        self.push_raw(
            proto_push_body(streams),
            Some("application/x-protobuf"),
            None,
            tenant,
        )
    }

    /// Push a JSON body (`application/json`), optionally gzip-compressed
    /// (`Content-Encoding: gzip`).
    pub fn push_json(&self, body: &Value, gzip_it: bool, tenant: Option<&str>) -> Resp {
        let raw = serde_json::to_vec(body).expect("serialize json");
        if gzip_it {
            self.push_raw(gzip(&raw), Some("application/json"), Some("gzip"), tenant)
        } else {
            self.push_raw(raw, Some("application/json"), None, tenant)
        }
    }

    /// Push and assert 204 with an empty body.
    pub fn push_proto_ok(&self, streams: &[Stream], tenant: Option<&str>) {
        let r = self.push_proto(streams, tenant);
        assert_eq!(
            (r.status, r.body.as_str()),
            (204, ""),
            "protobuf push should succeed with 204 and empty body"
        );
    }

    /// `GET /loki/api/v1/query_range`.
    pub fn query_range(&self, params: &[(&str, &str)], tenant: Option<&str>) -> Resp {
        self.get("/loki/api/v1/query_range", params, tenant)
    }
    /// `GET /loki/api/v1/query`.
    pub fn query(&self, params: &[(&str, &str)], tenant: Option<&str>) -> Resp {
        self.get("/loki/api/v1/query", params, tenant)
    }
    /// `GET /loki/api/v1/labels`.
    pub fn labels(&self, params: &[(&str, &str)], tenant: Option<&str>) -> Resp {
        self.get("/loki/api/v1/labels", params, tenant)
    }
    /// `GET /loki/api/v1/label/<name>/values`.
    pub fn label_values(&self, name: &str, params: &[(&str, &str)], tenant: Option<&str>) -> Resp {
        self.get(&format!("/loki/api/v1/label/{name}/values"), params, tenant)
    }
    /// `GET /loki/api/v1/series` (pass `("match[]", sel)` pairs, repeatable).
    pub fn series(&self, params: &[(&str, &str)], tenant: Option<&str>) -> Resp {
        self.get("/loki/api/v1/series", params, tenant)
    }
    /// Body of `GET /metrics` (asserts 200).
    pub fn metrics_text(&self) -> String {
        let r = self.get("/metrics", &[], None);
        assert_eq!(r.status, 200, "/metrics: {}", r.body);
        r.body
    }
    /// `GET /ready`.
    pub fn ready(&self) -> Resp {
        self.get("/ready", &[], None)
    }

    /// Convenience: forward log query over `[start, end)` in ns with a big
    /// limit; asserts 200 and returns the parsed streams.
    pub fn read_all(&self, query: &str, start: i64, end: i64, tenant: Option<&str>) -> StreamSet {
        let (s, e) = (start.to_string(), end.to_string());
        let r = self.query_range(
            &[
                ("query", query),
                ("start", &s),
                ("end", &e),
                ("limit", "5000"),
                ("direction", "forward"),
            ],
            tenant,
        );
        parse_streams(&r.ok_json())
    }
}

/// Spawn the binary with `<dir>/config.yaml`, logging to `<dir>/stdout.log`
/// and `<dir>/stderr.log` (appended to when `append`).
fn spawn_child(dir: &Path, opts: &SluiceOptions, append: bool) -> Child {
    let bin = sluice_bin();
    let open_log = |name: &str| {
        let path = dir.join(name);
        let mut f = if append {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
        } else {
            File::create(&path)
        }
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        if append {
            let _ = writeln!(f, "--- restart ---");
        }
        f
    };
    let stdout = open_log("stdout.log");
    let stderr = open_log("stderr.log");
    let mut cmd = Command::new(bin);
    cmd.arg(format!(
        "-config.file={}",
        dir.join("config.yaml").display()
    ))
    .arg(format!(
        "-target={}",
        opts.target.as_deref().unwrap_or("all")
    ))
    .args(&opts.extra_args)
    .current_dir(dir)
    .stdin(Stdio::null())
    .stdout(Stdio::from(stdout))
    .stderr(Stdio::from(stderr));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SLUICE_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env("RUST_BACKTRACE", "1");
    for (k, v) in &opts.extra_env {
        cmd.env(k, v);
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()))
}

impl Drop for SluiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Last `max` bytes of `s` (on a char boundary).
pub fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut i = s.len() - max;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

/// An HTTP response, fully read.
#[derive(Clone, Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Body as text (lossy UTF-8).
    pub body: String,
    /// `Content-Type` header, if any.
    pub content_type: Option<String>,
}

impl Resp {
    fn from_response(r: reqwest::blocking::Response) -> Self {
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = r.bytes().map(|b| b.to_vec()).unwrap_or_default();
        Resp {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            content_type,
        }
    }

    /// Parse the body as JSON (panics with the body if it isn't).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): status {} {:?}",
                self.status, self.body
            )
        })
    }

    /// Assert status 200 and parse the body as JSON.
    pub fn ok_json(&self) -> Value {
        assert_eq!(
            self.status, 200,
            "expected 200, got {} {:?}",
            self.status, self.body
        );
        self.json()
    }

    /// Body with trailing whitespace/newline removed (Go's http.Error adds `\n`).
    pub fn text(&self) -> &str {
        self.body.trim_end()
    }
}

// ---------------------------------------------------------------------------
// Push bodies
// ---------------------------------------------------------------------------

/// One stream to push: a raw labels string (sent verbatim in protobuf pushes)
/// and `(ns timestamp, line)` entries.
#[derive(Clone, Debug)]
pub struct Stream {
    /// Label set in PromQL syntax, e.g. `{job="app", env="dev"}`.
    pub labels: String,
    /// Entries in push order.
    pub entries: Vec<(i64, String)>,
}

impl Stream {
    /// Build a stream.
    pub fn new<S: Into<String>>(labels: &str, entries: impl IntoIterator<Item = (i64, S)>) -> Self {
        Stream {
            labels: labels.to_string(),
            entries: entries.into_iter().map(|(t, l)| (t, l.into())).collect(),
        }
    }
}

/// Protobuf `logproto.PushRequest` bytes (uncompressed), via `loki-api`.
pub fn proto_push_bytes(streams: &[Stream]) -> Vec<u8> {
    use loki_api::logproto::{EntryAdapter, PushRequest, StreamAdapter};
    use loki_api::prost::Message;
    let req = PushRequest {
        streams: streams
            .iter()
            .map(|s| StreamAdapter {
                labels: s.labels.clone(),
                entries: s
                    .entries
                    .iter()
                    .map(|(ts, line)| EntryAdapter {
                        timestamp: Some(loki_api::prost_types::Timestamp {
                            seconds: ts.div_euclid(SEC),
                            nanos: ts.rem_euclid(SEC) as i32,
                        }),
                        line: line.clone(),
                    })
                    .collect(),
                hash: 0,
            })
            .collect(),
    };
    req.encode_to_vec()
}

/// Raw-snappy block (not framed) compression, as promtail does.
pub fn snappy(data: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(data)
        .expect("snappy compress")
}

/// Gzip compression.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip finish")
}

/// Snappy-compressed protobuf push body.
pub fn proto_push_body(streams: &[Stream]) -> Vec<u8> {
    snappy(&proto_push_bytes(streams))
}

/// One JSON push stream: `{"stream":{labels},"values":[["<ns>","line"],…]}`.
pub fn json_stream(labels: &[(&str, &str)], entries: &[(i64, &str)]) -> Value {
    let stream: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let values: Vec<Value> = entries
        .iter()
        .map(|(ts, l)| json!([ts.to_string(), l]))
        .collect();
    json!({"stream": stream, "values": values})
}

/// `{"streams":[…]}` from [`json_stream`] values.
pub fn json_push(streams: Vec<Value>) -> Value {
    json!({ "streams": streams })
}

// ---------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------

/// Sorted label set.
pub type Labels = BTreeMap<String, String>;

/// Streams of a log query result: label set → entries in result order.
pub type StreamSet = BTreeMap<Labels, Vec<(i64, String)>>;

/// Build a [`Labels`] from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Validate a log query response's exact shape and return its streams.
///
/// Checks: top-level keys are exactly `status`,`data`; `status` is
/// `success`; `data` has exactly `resultType` (= `streams`), `result`
/// (array) and `stats` (object); each result item has exactly `stream`
/// (object of strings) and `values` (array of `["<ns>","<line>"]`, both
/// strings); no stream appears twice.
pub fn parse_streams(v: &Value) -> StreamSet {
    let top = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    let keys: BTreeSet<&str> = top.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["status", "data"]),
        "top-level keys of {v}"
    );
    assert_eq!(v["status"], "success", "status in {v}");
    let data = v["data"]
        .as_object()
        .unwrap_or_else(|| panic!("data not an object: {v}"));
    let keys: BTreeSet<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["resultType", "result", "stats"]),
        "data keys of {v}"
    );
    assert_eq!(data["resultType"], "streams", "resultType in {v}");
    assert!(data["stats"].is_object(), "stats must be an object in {v}");
    let mut out = StreamSet::new();
    for item in data["result"]
        .as_array()
        .unwrap_or_else(|| panic!("result not array: {v}"))
    {
        let obj = item
            .as_object()
            .unwrap_or_else(|| panic!("result item not object: {item}"));
        let keys: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["stream", "values"]),
            "result item keys of {item}"
        );
        let lbls: Labels = obj["stream"]
            .as_object()
            .unwrap_or_else(|| panic!("stream not object: {item}"))
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .unwrap_or_else(|| panic!("label value not string: {item}"))
                        .to_string(),
                )
            })
            .collect();
        let values = obj["values"]
            .as_array()
            .unwrap_or_else(|| panic!("values not array: {item}"))
            .iter()
            .map(|pair| {
                let a = pair
                    .as_array()
                    .unwrap_or_else(|| panic!("value not array: {pair}"));
                assert_eq!(a.len(), 2, "value must be [ts, line]: {pair}");
                let ts = a[0]
                    .as_str()
                    .unwrap_or_else(|| panic!("ts not a string: {pair}"));
                let ts: i64 = ts
                    .parse()
                    .unwrap_or_else(|_| panic!("ts not integer ns: {pair}"));
                let line = a[1]
                    .as_str()
                    .unwrap_or_else(|| panic!("line not string: {pair}"));
                (ts, line.to_string())
            })
            .collect();
        assert!(
            out.insert(lbls, values).is_none(),
            "stream appears twice in {v}"
        );
    }
    out
}

/// Build an expected [`StreamSet`].
pub fn stream_set(items: Vec<(Labels, Vec<(i64, &str)>)>) -> StreamSet {
    items
        .into_iter()
        .map(|(l, e)| (l, e.into_iter().map(|(t, s)| (t, s.to_string())).collect()))
        .collect()
}

/// Collects several independent check failures so one test can report all
/// mismatches at once (then panics listing them in [`Failures::finish`]).
#[derive(Default, Debug)]
pub struct Failures(Vec<String>);

impl Failures {
    /// Empty collector.
    pub fn new() -> Self {
        Self::default()
    }
    /// Record a failure unless `ok`.
    pub fn check(&mut self, what: &str, ok: bool, detail: impl std::fmt::Display) {
        if !ok {
            self.0.push(format!("{what}: {detail}"));
        }
    }
    /// Record a failure unless `got == expected`.
    pub fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: T, expected: T) {
        if got != expected {
            self.0.push(format!(
                "{what}:\n    expected: {expected:?}\n    got:      {got:?}"
            ));
        }
    }
    /// Record a failure unless the response has `status` and its body
    /// (trailing newline trimmed) satisfies `body_ok`.
    pub fn resp(
        &mut self,
        what: &str,
        r: &Resp,
        status: u16,
        body_ok: impl Fn(&str) -> bool,
        expected_body: &str,
    ) {
        if r.status != status || !body_ok(r.text()) {
            self.0.push(format!(
                "{what}:\n    expected: {status} {expected_body}\n    got:      {} {:?}",
                r.status, r.body
            ));
        }
    }
    /// Panic listing every recorded failure, if any.
    pub fn finish(self) {
        if !self.0.is_empty() {
            panic!(
                "{} check(s) failed:\n- {}",
                self.0.len(),
                self.0.join("\n- ")
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------

/// Current time in ns since the epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after epoch")
        .as_nanos() as i64
}

/// RFC3339 with 9 fractional digits in UTC, e.g. `2026-01-02T03:04:05.000000123Z`.
pub fn rfc3339_nano(ns: i64) -> String {
    let secs = ns.div_euclid(SEC);
    let nanos = ns.rem_euclid(SEC);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let mut y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    if m <= 2 {
        y += 1;
    }
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Whether something accepts TCP connections on `127.0.0.1:port`.
pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    )
    .is_ok()
}

// ---------------------------------------------------------------------------
// Prometheus text format
// ---------------------------------------------------------------------------

/// A tiny Prometheus text exposition format parser.
pub mod prom {
    use std::collections::BTreeMap;

    /// One sample line.
    #[derive(Clone, Debug, PartialEq)]
    pub struct Sample {
        /// Metric name (incl. `_bucket`/`_sum`/`_count` suffixes).
        pub name: String,
        /// Labels.
        pub labels: BTreeMap<String, String>,
        /// Value.
        pub value: f64,
    }

    /// Parse all sample lines (comments and blank lines are skipped;
    /// malformed lines are ignored).
    pub fn parse(text: &str) -> Vec<Sample> {
        text.lines().filter_map(parse_line).collect()
    }

    fn parse_line(line: &str) -> Option<Sample> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
        let name = line[..name_end].to_string();
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(inner) = rest.strip_prefix('{') {
            let b = inner.as_bytes();
            let mut i = 0;
            loop {
                while i < b.len() && (b[i] == b',' || b[i] == b' ') {
                    i += 1;
                }
                if i >= b.len() {
                    return None;
                }
                if b[i] == b'}' {
                    i += 1;
                    break;
                }
                let eq = inner[i..].find('=')? + i;
                let key = inner[i..eq].trim().to_string();
                i = eq + 1;
                if b.get(i) != Some(&b'"') {
                    return None;
                }
                i += 1;
                let mut val = String::new();
                let mut chars = inner[i..].char_indices();
                loop {
                    let (j, c) = chars.next()?;
                    match c {
                        '"' => {
                            i += j + 1;
                            break;
                        }
                        '\\' => {
                            let (_, e) = chars.next()?;
                            val.push(if e == 'n' { '\n' } else { e });
                        }
                        other => val.push(other),
                    }
                }
                labels.insert(key, val);
            }
            rest = &inner[i..];
        }
        let value_tok = rest.split_whitespace().next()?;
        let value = match value_tok {
            "+Inf" | "Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().ok()?,
        };
        Some(Sample {
            name,
            labels,
            value,
        })
    }

    /// All samples named `name` whose labels include every `(k, v)` given.
    pub fn find_all(text: &str, name: &str, labels: &[(&str, &str)]) -> Vec<Sample> {
        parse(text)
            .into_iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// Value of the first sample named `name` whose labels include every
    /// `(k, v)` given.
    pub fn find(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        find_all(text, name, labels).first().map(|s| s.value)
    }

    /// The `# TYPE` declared for a metric family, if any.
    pub fn metric_type(text: &str, family: &str) -> Option<String> {
        text.lines().find_map(|l| {
            let mut it = l.split_whitespace();
            if it.next() == Some("#") && it.next() == Some("TYPE") && it.next() == Some(family) {
                it.next().map(str::to_string)
            } else {
                None
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nano(1_700_000_000 * SEC + 123),
            "2023-11-14T22:13:20.000000123Z"
        );
        assert_eq!(
            rfc3339_nano(951_782_400 * SEC),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn prom_parser() {
        let text = "# HELP x y\n# TYPE loki_request_duration_seconds histogram\n\
            loki_request_duration_seconds_bucket{method=\"POST\",route=\"loki_api_v1_push\",status_code=\"204\",ws=\"false\",le=\"+Inf\"} 3\n\
            up 1\nweird{a=\"q\\\"x\",b=\"\"} 2.5e0 1700000000\n";
        assert_eq!(
            prom::find(
                text,
                "loki_request_duration_seconds_bucket",
                &[("route", "loki_api_v1_push"), ("le", "+Inf")]
            ),
            Some(3.0)
        );
        assert_eq!(prom::find(text, "up", &[]), Some(1.0));
        assert_eq!(
            prom::find(text, "weird", &[("a", "q\"x"), ("b", "")]),
            Some(2.5)
        );
        assert_eq!(
            prom::metric_type(text, "loki_request_duration_seconds").as_deref(),
            Some("histogram")
        );
    }

    #[test]
    fn proto_body_roundtrip() {
        use loki_api::prost::Message;
        let body = proto_push_body(&[Stream::new("{a=\"1\"}", [(SEC + 5, "x")])]);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let req = loki_api::logproto::PushRequest::decode(raw.as_slice()).unwrap();
        assert_eq!(req.streams[0].labels, "{a=\"1\"}");
        let ts = req.streams[0].entries[0].timestamp.unwrap();
        assert_eq!((ts.seconds, ts.nanos), (1, 5));
    }
}
