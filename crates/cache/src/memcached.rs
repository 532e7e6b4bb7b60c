//! A memcached client for caching: `get` of many keys in batches and
//! `set`, over the text protocol, with a small pool of idle connections per
//! server and the server of a key chosen by jump consistent hashing.
//!
//! A failed request (timeout, refused, protocol error) is reported to the
//! caller, which treats it as a miss; the connection is dropped, never
//! reused mid-reply.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::config::CacheConfig;

/// Why a memcached request failed.
#[derive(Debug, thiserror::Error)]
pub enum MemcachedError {
    /// The server did not answer in time.
    #[error("memcached {addr}: timed out after {timeout:?}")]
    Timeout {
        /// Server.
        addr: String,
        /// Deadline.
        timeout: Duration,
    },
    /// Connecting, reading or writing failed.
    #[error("memcached {addr}: {source}")]
    Io {
        /// Server.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
    /// The server answered something unexpected.
    #[error("memcached {addr}: unexpected reply {reply:?}")]
    Protocol {
        /// Server.
        addr: String,
        /// The reply line.
        reply: String,
    },
}

type Connection = BufReader<TcpStream>;

struct Server {
    addr: String,
    idle: Mutex<Vec<Connection>>,
}

/// A set of memcached servers.
pub struct MemcachedClient {
    servers: Vec<Server>,
    timeout: Duration,
    max_idle_conns: usize,
    max_item_size: usize,
    batch_size: usize,
    parallelism: usize,
}

impl std::fmt::Debug for MemcachedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addrs: Vec<&str> = self.servers.iter().map(|s| s.addr.as_str()).collect();
        f.debug_struct("MemcachedClient")
            .field("servers", &addrs)
            .finish_non_exhaustive()
    }
}

impl MemcachedClient {
    /// A client for the servers of `config` (connections are made lazily).
    pub fn new(config: &CacheConfig) -> MemcachedClient {
        MemcachedClient {
            servers: config
                .memcached_addresses()
                .into_iter()
                .map(|addr| Server {
                    addr,
                    idle: Mutex::new(Vec::new()),
                })
                .collect(),
            timeout: config.memcached_client.timeout,
            max_idle_conns: config.memcached_client.max_idle_conns,
            max_item_size: config.memcached_client.max_item_size,
            batch_size: config.memcached.batch_size.max(1),
            parallelism: config.memcached.parallelism.max(1),
        }
    }

    /// Returns the index of the server owning `key`.
    fn server_for(&self, key: &str) -> usize {
        jump_hash(fnv64a(key.as_bytes()), self.servers.len())
    }

    /// Fetches `keys` (already memcached-safe); missing keys are absent
    /// from the result. Errors of one batch lose only that batch.
    pub async fn get_multi(
        &self,
        keys: &[String],
    ) -> (HashMap<String, Vec<u8>>, Vec<MemcachedError>) {
        let mut by_server: HashMap<usize, Vec<String>> = HashMap::new();
        for key in keys {
            by_server
                .entry(self.server_for(key))
                .or_default()
                .push(key.clone());
        }
        let batches: Vec<(usize, Vec<String>)> = by_server
            .into_iter()
            .flat_map(|(server, keys)| {
                keys.chunks(self.batch_size)
                    .map(|chunk| (server, chunk.to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut found = HashMap::new();
        let mut errors = Vec::new();
        use futures::stream::StreamExt;
        let mut results = futures::stream::iter(batches)
            .map(|(server, keys)| futures::FutureExt::boxed(self.get_batch(server, keys)))
            .buffer_unordered(self.parallelism);
        while let Some(result) = results.next().await {
            match result {
                Ok(items) => found.extend(items),
                Err(error) => errors.push(error),
            }
        }
        (found, errors)
    }

    /// Stores `value` under `key` for `ttl` (0: no expiry).
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), MemcachedError> {
        if self.max_item_size > 0 && value.len() > self.max_item_size {
            return Ok(());
        }
        let server = self.server_for(key);
        let exptime = ttl.as_secs().min(30 * 24 * 3600);
        let mut request = format!("set {key} 0 {exptime} {}\r\n", value.len()).into_bytes();
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
        let addr = self.servers[server].addr.clone();
        self.with_connection(server, |mut connection| async move {
            connection.get_mut().write_all(&request).await?;
            let mut line = String::new();
            connection.read_line(&mut line).await?;
            Ok((connection, line))
        })
        .await
        .and_then(|line| {
            if line.trim_end() == "STORED" {
                Ok(())
            } else {
                Err(MemcachedError::Protocol {
                    addr,
                    reply: line.trim_end().to_string(),
                })
            }
        })
    }

    async fn get_batch(
        &self,
        server: usize,
        keys: Vec<String>,
    ) -> Result<HashMap<String, Vec<u8>>, MemcachedError> {
        let request = format!("get {}\r\n", keys.join(" "));
        let addr = self.servers[server].addr.clone();
        let reply = self
            .with_connection(server, |mut connection| async move {
                connection.get_mut().write_all(request.as_bytes()).await?;
                let mut items = Vec::new();
                loop {
                    let mut line = String::new();
                    if connection.read_line(&mut line).await? == 0 {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "connection closed mid-reply",
                        ));
                    }
                    let line = line.trim_end();
                    if line == "END" {
                        break;
                    }
                    let mut parts = line.split(' ');
                    let (Some("VALUE"), Some(key), Some(_flags), Some(bytes)) =
                        (parts.next(), parts.next(), parts.next(), parts.next())
                    else {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("unexpected reply {line:?}"),
                        ));
                    };
                    let length: usize = bytes.parse().map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::InvalidData, "bad length")
                    })?;
                    let mut data = vec![0u8; length + 2];
                    connection.read_exact(&mut data).await?;
                    data.truncate(length);
                    items.push((key.to_string(), data));
                }
                Ok((connection, items))
            })
            .await;
        reply
            .map(|items| items.into_iter().collect())
            .map_err(|error| match error {
                MemcachedError::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::InvalidData =>
                {
                    MemcachedError::Protocol {
                        addr,
                        reply: source.to_string(),
                    }
                }
                other => other,
            })
    }

    /// Runs `exchange` on an idle or new connection to `server` within the
    /// timeout; the connection goes back to the pool only on success.
    async fn with_connection<T, F, Fut>(
        &self,
        server: usize,
        exchange: F,
    ) -> Result<T, MemcachedError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: std::future::Future<Output = std::io::Result<(Connection, T)>>,
    {
        let server_state = &self.servers[server];
        let addr = server_state.addr.clone();
        let idle = server_state.idle.lock().pop();
        let run = async {
            let connection = match idle {
                Some(connection) => connection,
                None => {
                    let stream = TcpStream::connect(&addr).await?;
                    stream.set_nodelay(true)?;
                    BufReader::new(stream)
                }
            };
            exchange(connection).await
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok((connection, value))) => {
                let mut idle = server_state.idle.lock();
                if idle.len() < self.max_idle_conns {
                    idle.push(connection);
                }
                Ok(value)
            }
            Ok(Err(source)) => Err(MemcachedError::Io { addr, source }),
            Err(_) => Err(MemcachedError::Timeout {
                addr,
                timeout: self.timeout,
            }),
        }
    }
}

/// FNV-1a 64-bit.
pub(crate) fn fnv64a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Lamping and Veach's jump consistent hash: adding a server moves only
/// 1/n of the keys.
fn jump_hash(mut key: u64, buckets: usize) -> usize {
    if buckets <= 1 {
        return 0;
    }
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < buckets as i64 {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b.wrapping_add(1) as f64) * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_hash_moves_about_one_nth() {
        let keys: Vec<u64> = (0..10_000u64).map(|i| fnv64a(&i.to_le_bytes())).collect();
        let moved = keys
            .iter()
            .filter(|&&key| jump_hash(key, 4) != jump_hash(key, 5))
            .count();
        // Ideal: 1/5 of the keys.
        assert!((1_500..2_500).contains(&moved), "{moved}");
        assert!(keys.iter().all(|&key| jump_hash(key, 5) < 5));
        assert_eq!(jump_hash(42, 1), 0);
    }
}
