//! A small memcached client speaking the text protocol, enough for the ring:
//! `gets`, `cas`, `add` and `set`.
//!
//! Each server gets one lazily opened connection, used by one request at a
//! time (the ring does a few requests per heartbeat period, so a pool buys
//! nothing). Any error or timeout drops the connection, and the next request
//! reconnects. A key always maps to the same server (FNV-1a of the key modulo
//! the number of servers): the ring record must live in exactly one place,
//! so there is deliberately no failover to another server.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::config::MemcachedConfig;
use crate::error::RingError;
use crate::kv::{CasId, KvStore};

/// Longest response line we accept (`VALUE <250-byte key> <flags> <len> <cas>`).
const MAX_LINE: u64 = 1024;
/// Largest value we accept; memcached's own item limit is at most 1 GB.
const MAX_VALUE: usize = 64 << 20;
/// Memcached's key length limit.
const MAX_KEY: usize = 250;

/// A memcached-backed [`KvStore`]. Clones share connections.
#[derive(Clone)]
pub struct MemcachedKv {
    servers: Arc<Vec<Server>>,
    timeout: Duration,
}

struct Server {
    addr: String,
    conn: Mutex<Option<BufStream<TcpStream>>>,
}

impl fmt::Debug for MemcachedKv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addrs: Vec<&str> = self.servers.iter().map(|s| s.addr.as_str()).collect();
        f.debug_struct("MemcachedKv")
            .field("addresses", &addrs)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What a command expects back.
#[derive(Clone, Copy, Debug)]
enum Command {
    Gets,
    Cas,
    Add,
    Set,
}

impl Command {
    fn name(self) -> &'static str {
        match self {
            Command::Gets => "gets",
            Command::Cas => "cas",
            Command::Add => "add",
            Command::Set => "set",
        }
    }
}

/// A parsed response.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Value(Option<(Vec<u8>, CasId)>),
    Stored(bool),
}

impl MemcachedKv {
    /// Returns a client for the configured servers; connects lazily.
    pub fn new(config: &MemcachedConfig) -> Result<Self, RingError> {
        if config.addresses.is_empty() {
            return Err(RingError::InvalidConfig {
                reason: "kvstore.memcached.addresses must be set for store memcached",
            });
        }
        if config.timeout.is_zero() {
            return Err(RingError::InvalidConfig {
                reason: "kvstore.memcached.timeout must be positive",
            });
        }
        let servers = config
            .addresses
            .iter()
            .map(|addr| Server {
                addr: addr.clone(),
                conn: Mutex::new(None),
            })
            .collect();
        Ok(MemcachedKv {
            servers: Arc::new(servers),
            timeout: config.timeout,
        })
    }

    /// Stores `value` unconditionally.
    pub async fn set(&self, key: &str, value: &[u8]) -> Result<(), RingError> {
        let request = storage_request("set", key, value, None);
        self.request(key, Command::Set, request).await.map(|_| ())
    }

    fn server_for(&self, key: &str) -> &Server {
        let hash = key.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
            (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
        });
        // `new` guarantees at least one server.
        &self.servers[hash as usize % self.servers.len()]
    }

    async fn request(
        &self,
        key: &str,
        command: Command,
        request: Vec<u8>,
    ) -> Result<Reply, RingError> {
        validate_key(key)?;
        let server = self.server_for(key);
        let attempt = async {
            let mut guard = server.conn.lock().await;
            let result = exchange(&server.addr, &mut guard, command, &request).await;
            if result.is_err() {
                // The stream may be mid-response: never reuse it.
                *guard = None;
            }
            result
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result,
            Err(_elapsed) => {
                *server.conn.lock().await = None;
                Err(RingError::MemcachedTimeout {
                    addr: server.addr.clone(),
                    timeout: self.timeout,
                })
            }
        }
    }
}

impl KvStore for MemcachedKv {
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, CasId)>, RingError> {
        let request = format!("gets {key}\r\n").into_bytes();
        match self.request(key, Command::Gets, request).await? {
            Reply::Value(value) => Ok(value),
            Reply::Stored(_) => Ok(None),
        }
    }

    async fn cas(&self, key: &str, value: &[u8], cas: CasId) -> Result<bool, RingError> {
        let request = storage_request("cas", key, value, Some(cas));
        match self.request(key, Command::Cas, request).await? {
            Reply::Stored(stored) => Ok(stored),
            Reply::Value(_) => Ok(false),
        }
    }

    async fn add(&self, key: &str, value: &[u8]) -> Result<bool, RingError> {
        let request = storage_request("add", key, value, None);
        match self.request(key, Command::Add, request).await? {
            Reply::Stored(stored) => Ok(stored),
            Reply::Value(_) => Ok(false),
        }
    }
}

fn validate_key(key: &str) -> Result<(), RingError> {
    let valid = !key.is_empty()
        && key.len() <= MAX_KEY
        && key.bytes().all(|byte| byte > b' ' && byte != 0x7f);
    if valid {
        Ok(())
    } else {
        Err(RingError::InvalidKey {
            key: key.to_owned(),
        })
    }
}

/// Builds `<cmd> <key> 0 0 <len> [<cas>]\r\n<value>\r\n` (flags 0, no expiry).
fn storage_request(command: &str, key: &str, value: &[u8], cas: Option<CasId>) -> Vec<u8> {
    let header = match cas {
        Some(cas) => format!("{command} {key} 0 0 {} {cas}\r\n", value.len()),
        None => format!("{command} {key} 0 0 {}\r\n", value.len()),
    };
    let mut request = Vec::with_capacity(header.len() + value.len() + 2);
    request.extend_from_slice(header.as_bytes());
    request.extend_from_slice(value);
    request.extend_from_slice(b"\r\n");
    request
}

/// Sends one request on the (re)connected stream and parses its reply.
async fn exchange(
    addr: &str,
    conn: &mut Option<BufStream<TcpStream>>,
    command: Command,
    request: &[u8],
) -> Result<Reply, RingError> {
    let io_error = |source| RingError::MemcachedIo {
        addr: addr.to_owned(),
        source,
    };
    let stream = match conn {
        Some(stream) => stream,
        None => {
            let tcp = TcpStream::connect(addr).await.map_err(io_error)?;
            tcp.set_nodelay(true).map_err(io_error)?;
            conn.insert(BufStream::new(tcp))
        }
    };
    stream.write_all(request).await.map_err(io_error)?;
    stream.flush().await.map_err(io_error)?;
    read_reply(addr, stream, command).await
}

async fn read_reply<S>(addr: &str, stream: &mut S, command: Command) -> Result<Reply, RingError>
where
    S: tokio::io::AsyncBufRead + Unpin,
{
    let protocol_error = |line: &str| RingError::MemcachedProtocol {
        addr: addr.to_owned(),
        command: command.name(),
        response: line.chars().take(200).collect(),
    };
    let line = read_line(addr, stream).await?;
    match command {
        Command::Gets => {
            if line == "END" {
                return Ok(Reply::Value(None));
            }
            let fields: Vec<&str> = line.split(' ').collect();
            let (len, cas) = match fields.as_slice() {
                ["VALUE", _key, _flags, len, cas] => (
                    len.parse::<usize>().map_err(|_| protocol_error(&line))?,
                    cas.parse::<CasId>().map_err(|_| protocol_error(&line))?,
                ),
                _ => return Err(protocol_error(&line)),
            };
            if len > MAX_VALUE {
                return Err(protocol_error(&line));
            }
            let mut value = vec![0; len + 2];
            stream
                .read_exact(&mut value)
                .await
                .map_err(|source| RingError::MemcachedIo {
                    addr: addr.to_owned(),
                    source,
                })?;
            if !value.ends_with(b"\r\n") {
                return Err(protocol_error("value not terminated by \\r\\n"));
            }
            value.truncate(len);
            let end = read_line(addr, stream).await?;
            if end != "END" {
                return Err(protocol_error(&end));
            }
            Ok(Reply::Value(Some((value, cas))))
        }
        Command::Cas | Command::Add | Command::Set => match line.as_str() {
            "STORED" => Ok(Reply::Stored(true)),
            "EXISTS" | "NOT_FOUND" | "NOT_STORED" => Ok(Reply::Stored(false)),
            _ => Err(protocol_error(&line)),
        },
    }
}

/// Reads one `\r\n`-terminated line (without the terminator).
async fn read_line<S>(addr: &str, stream: &mut S) -> Result<String, RingError>
where
    S: tokio::io::AsyncBufRead + Unpin,
{
    let io_error = |source| RingError::MemcachedIo {
        addr: addr.to_owned(),
        source,
    };
    let mut line = Vec::new();
    let read = (&mut *stream)
        .take(MAX_LINE)
        .read_until(b'\n', &mut line)
        .await
        .map_err(io_error)?;
    if read == 0 {
        return Err(io_error(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed by server",
        )));
    }
    if !line.ends_with(b"\r\n") {
        return Err(io_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "response line too long or not terminated by \\r\\n",
        )));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| {
        io_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "response line is not utf-8",
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(command: Command, bytes: &[u8]) -> Result<Reply, RingError> {
        let mut reader = tokio::io::BufReader::new(bytes);
        read_reply("mc:11211", &mut reader, command).await
    }

    #[tokio::test]
    async fn parses_gets_replies() {
        assert_eq!(
            parse(Command::Gets, b"END\r\n").await.expect("miss"),
            Reply::Value(None)
        );
        let hit = parse(Command::Gets, b"VALUE k 0 5 42\r\nab\r\nc\r\nEND\r\n")
            .await
            .expect("hit");
        assert_eq!(hit, Reply::Value(Some((b"ab\r\nc".to_vec(), 42))));
        let err = parse(Command::Gets, b"VALUE k 0 5\r\nabcde\r\nEND\r\n")
            .await
            .expect_err("no cas");
        assert!(err.to_string().contains("mc:11211"), "{err}");
        let err = parse(Command::Gets, b"VALUE k 0 9 1\r\nabc")
            .await
            .expect_err("truncated");
        assert!(matches!(err, RingError::MemcachedIo { .. }), "{err}");
    }

    #[tokio::test]
    async fn parses_storage_replies() {
        assert_eq!(
            parse(Command::Cas, b"STORED\r\n").await.expect("ok"),
            Reply::Stored(true)
        );
        assert_eq!(
            parse(Command::Cas, b"EXISTS\r\n").await.expect("ok"),
            Reply::Stored(false)
        );
        assert_eq!(
            parse(Command::Cas, b"NOT_FOUND\r\n").await.expect("ok"),
            Reply::Stored(false)
        );
        assert_eq!(
            parse(Command::Add, b"NOT_STORED\r\n").await.expect("ok"),
            Reply::Stored(false)
        );
        let err = parse(Command::Set, b"SERVER_ERROR object too large for cache\r\n")
            .await
            .expect_err("server error");
        assert!(err.to_string().contains("object too large"), "{err}");
        assert!(parse(Command::Set, b"").await.is_err());
        assert!(parse(Command::Set, b"STORED").await.is_err());
    }

    #[test]
    fn builds_requests_and_checks_keys() {
        assert_eq!(
            storage_request("cas", "k", b"v", Some(7)),
            b"cas k 0 0 1 7\r\nv\r\n"
        );
        assert_eq!(
            storage_request("add", "k", b"", None),
            b"add k 0 0 0\r\n\r\n"
        );
        assert!(validate_key("sluice-ring-ingester").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key("a b").is_err());
        assert!(validate_key("a\r\nflush_all").is_err());
        assert!(validate_key(&"k".repeat(251)).is_err());
    }

    #[tokio::test]
    async fn unreachable_server_error_names_the_address() {
        // Bind then drop a listener to get a port nobody listens on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        drop(listener);
        let kv = MemcachedKv::new(&MemcachedConfig {
            addresses: vec![addr.clone()],
            timeout: Duration::from_millis(500),
        })
        .expect("client");
        let err = kv.get("ring").await.expect_err("nobody listens");
        assert!(err.to_string().contains(&addr), "{err}");
    }
    #[tokio::test]
    async fn silent_server_times_out_and_names_the_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let accept = tokio::spawn(async move {
            // Accept and hold the connections without ever answering.
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let kv = MemcachedKv::new(&MemcachedConfig {
            addresses: vec![addr.clone()],
            timeout: Duration::from_millis(100),
        })
        .expect("client");
        let err = kv.get("ring").await.expect_err("silent server");
        assert!(matches!(err, RingError::MemcachedTimeout { .. }), "{err}");
        assert!(err.to_string().contains(&addr), "{err}");
        // The timed-out connection was dropped: the next call reconnects and
        // times out again rather than reading a stale reply.
        assert!(kv.get("ring").await.is_err());
        accept.abort();
    }
}
