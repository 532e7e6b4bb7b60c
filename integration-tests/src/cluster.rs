//! A distributed Sluice cluster of separate processes for the ring tests: a
//! real memcached holding the ring, ingesters, distributors and queriers
//! sharing one filesystem object store, all on loopback.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, SluiceOptions, SluiceProcess, Value};

/// A memcached server on a loopback port, killed on drop.
pub struct Memcached {
    child: Child,
    port: u16,
}

impl Memcached {
    /// Starts memcached on a free port.
    pub fn start() -> Memcached {
        Memcached::start_on(free_port())
    }

    /// Starts memcached on `port` and waits until it accepts connections.
    pub fn start_on(port: u16) -> Memcached {
        let spawned = Command::new("memcached")
            // `-u root` only matters when running as root, where memcached
            // otherwise refuses to start.
            .args([
                "-p",
                &port.to_string(),
                "-l",
                "127.0.0.1",
                "-U",
                "0",
                "-u",
                "root",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                panic!("memcached is not installed: run `make test-deps`")
            }
            Err(error) => panic!("cannot start memcached: {error}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("memcached exited early with {status}");
            }
            assert!(Instant::now() < deadline, "memcached did not listen in 10s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Memcached { child, port }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the server; [`Memcached::start_again`] brings up an empty one.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server and starts an empty one on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Starts an empty server on the same port after [`Memcached::stop`].
    pub fn start_again(&mut self) {
        let port = self.port;
        // The old socket may linger for a moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "port {port} stayed busy");
            std::thread::sleep(Duration::from_millis(20));
        }
        *self = Memcached::start_on(port);
    }

    /// Sends one text-protocol command and returns the reply up to `END`.
    pub fn command(&self, line: &str) -> String {
        use std::io::{BufRead, BufReader, Write};
        let mut stream =
            std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect memcached");
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        stream
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
        let mut reader = BufReader::new(stream);
        let mut out = String::new();
        loop {
            let mut reply = String::new();
            if reader.read_line(&mut reply).unwrap_or(0) == 0 {
                break;
            }
            let done = reply.trim_end() == "END";
            out.push_str(&reply);
            if done {
                break;
            }
        }
        out
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Settings shared by every process of a test cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// `host:port` of the ring's memcached.
    pub memcached: String,
    /// Root of the shared filesystem object store.
    pub store_dir: PathBuf,
    /// YAML appended to every process's config (top-level sections other
    /// than `auth_enabled`, `server`, `common`, `storage_config`).
    pub extra_yaml: String,
}

/// The YAML of one cluster process; `@…@` placeholders are the harness's.
fn node_yaml(cluster: &ClusterConfig, instance_id: &str) -> String {
    format!(
        "auth_enabled: false\n\
         server:\n  http_listen_address: 127.0.0.1\n  http_listen_port: @HTTP_PORT@\n  \
         grpc_listen_address: 127.0.0.1\n  grpc_listen_port: @GRPC_PORT@\n  log_level: info\n\
         common:\n  path_prefix: @DATA_DIR@\n  ring:\n    kvstore:\n      store: memcached\n      \
         memcached:\n        addresses: [{memcached}]\n        timeout: 500ms\n    \
         heartbeat_period: 1s\n    heartbeat_timeout: 10s\n    replication_factor: 3\n    \
         instance_id: {instance_id}\n\
         storage_config:\n  filesystem:\n    directory: {store}\n  index_shipper:\n    resync_interval: 1s\n\
         ingester_client:\n  remote_timeout: 5s\n  pool_config:\n    client_cleanup_period: 1s\n\
         limits_config:\n  max_entries_limit_per_query: 200000\n{extra}",
        memcached = cluster.memcached,
        store = cluster.store_dir.display(),
        extra = cluster.extra_yaml,
    )
}

/// The options of one process of the cluster with `target`, plus `extra`
/// YAML of its own.
pub fn node_options(
    cluster: &ClusterConfig,
    target: &str,
    instance_id: &str,
    extra: &str,
) -> SluiceOptions {
    SluiceOptions::new()
        .yaml(node_yaml(cluster, instance_id) + extra)
        .target(target)
}

/// Starts one process of the cluster with `target` and waits until ready.
pub fn start_node(cluster: &ClusterConfig, target: &str, instance_id: &str) -> SluiceProcess {
    SluiceProcess::start(node_options(cluster, target, instance_id, ""))
}

/// Starts the read path as the chart deploys it: a query frontend, and a
/// querier that pulls its work from the frontend, which passes live tails
/// to the querier's HTTP port (Loki's `tail_proxy_url`). Returns
/// `(frontend, querier)`.
pub fn start_read_path(cluster: &ClusterConfig) -> (SluiceProcess, SluiceProcess) {
    let querier_http = free_port();
    let frontend = SluiceProcess::start(node_options(
        cluster,
        "query-frontend",
        "frontend-0",
        &format!("frontend:\n  tail_proxy_url: http://127.0.0.1:{querier_http}\n"),
    ));
    let querier = SluiceProcess::start(
        node_options(
            cluster,
            "querier",
            "querier-0",
            &format!(
                "frontend_worker:\n  frontend_address: 127.0.0.1:{}\n",
                frontend.grpc_port()
            ),
        )
        .arg(format!("-server.http-listen-port={querier_http}"))
        .expect_http_port(querier_http),
    );
    (frontend, querier)
}

/// The ring as `/ring` shows it in JSON: instance id → (state, healthy).
pub fn ring_states(p: &SluiceProcess, path: &str) -> BTreeMap<String, (String, bool)> {
    let resp = p.send(
        p.client()
            .get(format!("{}{path}", p.http_url()))
            .header("Accept", "application/json"),
    );
    assert_eq!(resp.status, 200, "{path}: {}", resp.body);
    let json: Value = resp.json();
    json["shards"]
        .as_array()
        .expect("shards array")
        .iter()
        .map(|shard| {
            (
                shard["id"].as_str().expect("id").to_string(),
                (
                    shard["state"].as_str().expect("state").to_string(),
                    shard["healthy"].as_bool().expect("healthy"),
                ),
            )
        })
        .collect()
}

/// Waits (≤ `timeout`) until `p`'s `/ring` lists exactly `ids`, all healthy
/// and ACTIVE.
pub fn wait_ring_active(p: &SluiceProcess, ids: &[&str], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let states = ring_states(p, "/ring");
        let ok = states.len() == ids.len()
            && ids.iter().all(|id| {
                states
                    .get(*id)
                    .is_some_and(|(state, healthy)| state == "ACTIVE" && *healthy)
            });
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "ring never showed {ids:?} ACTIVE and healthy; last: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A new shared object-store directory under `root`.
pub fn store_dir(root: &Path) -> PathBuf {
    let dir = root.join("store");
    std::fs::create_dir_all(&dir).expect("create store dir");
    dir
}
