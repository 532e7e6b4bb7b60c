//! An in-process S3-protocol server for the object-storage tests.
//!
//! [`S3Server`] serves a local directory over the S3 REST API with the
//! crates.io `s3s` / `s3s-fs` crates (0.14): each top-level directory of the
//! root is a bucket, objects are files under it. Requests must be signed
//! (SigV4) with [`ACCESS_KEY`] / [`SECRET_KEY`]. It listens on `127.0.0.1`
//! only, runs on its own small tokio runtime, and can be stopped and started
//! again on the same port (to simulate an outage).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;

/// Access key the server accepts.
pub const ACCESS_KEY: &str = "sluiceaccesskey";
/// Secret key the server accepts.
pub const SECRET_KEY: &str = "sluice-secret-key-0123456789";

/// A running S3 server; dropping it stops it.
pub struct S3Server {
    root: PathBuf,
    port: u16,
    runtime: Option<tokio::runtime::Runtime>,
}

impl S3Server {
    /// Serve `root` (created if missing) on a free loopback port.
    pub fn start(root: &Path) -> S3Server {
        Self::start_on(root, crate::free_port())
    }

    /// Serve `root` on `127.0.0.1:port` (e.g. the port of a stopped server).
    /// Panics if the port cannot be bound within a few seconds.
    pub fn start_on(root: &Path, port: u16) -> S3Server {
        std::fs::create_dir_all(root)
            .unwrap_or_else(|e| panic!("create S3 root {}: {e}", root.display()));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s3-server")
            .enable_all()
            .build()
            .expect("build tokio runtime for the S3 server");
        let fs = s3s_fs::FileSystem::new(root)
            .unwrap_or_else(|e| panic!("s3s-fs on {}: {e:?}", root.display()));
        let service = {
            let mut builder = s3s::service::S3ServiceBuilder::new(fs);
            builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            builder.build()
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // The port may still be held for a moment by a just-stopped server.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match runtime.block_on(tokio::net::TcpListener::bind(addr)) {
                Ok(l) => break l,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("S3 server cannot bind {addr}: {e}"),
            }
        };
        runtime.spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        S3Server {
            root: root.to_path_buf(),
            port,
            runtime: Some(runtime),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The served directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Create a bucket (a top-level directory of the root).
    pub fn create_bucket(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("create bucket dir {}: {e}", dir.display()));
        dir
    }

    /// Stop serving: the listener and every open connection are closed
    /// (bounded: at most 2 s).
    pub fn stop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }

    /// Whether it is serving.
    pub fn running(&self) -> bool {
        self.runtime.is_some()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every file under `dir` (recursively), as paths relative to `dir` with `/`
/// separators, sorted.
pub fn list_files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if let Ok(rel) = path.strip_prefix(base) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
