//! A real Alertmanager and a real Prometheus (remote-write receiver on) on
//! loopback ports, each with its own temp directory, for the ruler tests.
//! Both come from Debian's `prometheus-alertmanager` and `prometheus`
//! packages (`make test-deps` installs them). Killed on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, http_client, Value};

/// How long a server may take to answer its readiness endpoint.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

fn binary(candidates: &[&str], package: &str) -> String {
    for candidate in candidates {
        if Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
        {
            return candidate.to_string();
        }
    }
    panic!("{package} is not installed: run `make test-deps` (apt-get install {package})")
}

fn wait_ready(child: &mut Child, url: &str, name: &str, log: &Path) {
    let client = http_client();
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{name} exited early with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if let Ok(response) = client.get(url).send() {
            if response.status().is_success() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{name} not ready within {READY_TIMEOUT:?}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn(binary: &str, args: &[String], log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("create log");
    let err = out.try_clone().expect("clone log handle");
    Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"))
}

/// A running Alertmanager.
pub struct Alertmanager {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts one that accepts every alert (a null receiver) and waits
    /// until it is ready.
    pub fn start() -> Alertmanager {
        let binary = binary(
            &["prometheus-alertmanager", "alertmanager"],
            "prometheus-alertmanager",
        );
        let dir = tempfile::Builder::new()
            .prefix("sluice-am-")
            .tempdir()
            .expect("tempdir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: \"null\"\n  group_wait: 0s\nreceivers:\n  - name: \"null\"\n",
        )
        .expect("write alertmanager config");
        let port = free_port();
        let log = dir.path().join("alertmanager.log");
        let mut child = spawn(
            &binary,
            &[
                format!("--config.file={}", config.display()),
                format!("--storage.path={}", dir.path().join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                // No gossip: one standalone instance.
                "--cluster.listen-address=".to_string(),
            ],
            &log,
        );
        wait_ready(
            &mut child,
            &format!("http://127.0.0.1:{port}/-/ready"),
            "alertmanager",
            &log,
        );
        Alertmanager {
            child,
            port,
            _dir: dir,
        }
    }

    /// Base URL, as `ruler.alertmanager_url` takes it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `GET /api/v2/alerts`: the active alerts.
    pub fn alerts(&self) -> Vec<Value> {
        let response = http_client()
            .get(format!("{}/api/v2/alerts", self.url()))
            .send()
            .expect("GET /api/v2/alerts");
        assert!(response.status().is_success(), "{}", response.status());
        response.json::<Vec<Value>>().expect("alerts JSON")
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running Prometheus with its remote-write receiver enabled.
pub struct Prometheus {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts one on a free port and waits until it is ready.
    pub fn start() -> Prometheus {
        Prometheus::start_on(free_port())
    }

    /// Starts one on `port` (reserved earlier with [`free_port`]).
    pub fn start_on(port: u16) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("sluice-prom-")
            .tempdir()
            .expect("tempdir");
        let mut prometheus = Prometheus {
            child: None,
            port,
            dir,
        };
        prometheus.run();
        prometheus
    }

    fn run(&mut self) {
        let binary = binary(&["prometheus"], "prometheus");
        let config = self.dir.path().join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1m\n").expect("write config");
        let log = self.dir.path().join("prometheus.log");
        let mut child = spawn(
            &binary,
            &[
                format!("--config.file={}", config.display()),
                format!(
                    "--storage.tsdb.path={}",
                    self.dir.path().join("data").display()
                ),
                format!("--web.listen-address=127.0.0.1:{}", self.port),
                "--web.enable-remote-write-receiver".to_string(),
            ],
            &log,
        );
        wait_ready(
            &mut child,
            &format!("http://127.0.0.1:{}/-/ready", self.port),
            "prometheus",
            &log,
        );
        self.child = Some(child);
    }

    /// The remote-write URL.
    pub fn write_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }

    /// Instant query (`time` in Unix seconds, or now); returns `data.result`.
    pub fn query(&self, query: &str, time: Option<f64>) -> Vec<Value> {
        let mut params = vec![("query", query.to_string())];
        if let Some(time) = time {
            params.push(("time", format!("{time:.3}")));
        }
        let response = http_client()
            .get(format!("http://127.0.0.1:{}/api/v1/query", self.port))
            .query(&params)
            .send()
            .expect("GET /api/v1/query");
        let body: Value = response.json().expect("query JSON");
        assert_eq!(body["status"], "success", "{body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
