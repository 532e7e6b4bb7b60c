//! The HTTP server loop, with the `server` block's timeouts so that slow
//! clients cannot hold connections and memory forever:
//!
//! * `http_server_read_timeout` bounds reading a request: its headers
//!   (hyper's header read timer, which also closes a keep-alive connection
//!   that sends no new request for that long) and its body (a deadline on
//!   the body from the moment the headers arrived; a body still incomplete
//!   then fails with [`BodyReadTimeout`]).
//! * `http_server_write_timeout` bounds a stalled write: a response (or a
//!   WebSocket frame) that makes no progress for that long, because the
//!   client stopped reading, closes the connection. Slow but steady
//!   readers and long-running handlers are not cut off.
//!
//! Shutdown is graceful: on cancellation the listener closes, every
//! connection finishes its in-flight request and closes, and `serve`
//! returns when all are gone (the caller bounds the wait).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The timeouts of the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// Longest time to receive a request's headers and body (0: none).
    pub read: Duration,
    /// Longest time a write may stall (0: none).
    pub write: Duration,
}

/// The error a request body yields when the client did not send it within
/// the read timeout.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("request body not received within the server's read timeout")]
pub struct BodyReadTimeout;

impl BodyReadTimeout {
    /// Returns whether `error` (or an error it wraps) is a body read
    /// timeout.
    pub fn is_cause_of(error: &(dyn std::error::Error + 'static)) -> bool {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(error) = current {
            if error.is::<BodyReadTimeout>() {
                return true;
            }
            current = error.source();
        }
        false
    }
}

/// Serves `router` on `listener` until `shutdown`, then drains connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: HttpTimeouts,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let (close_tx, close_rx) = tokio::sync::watch::channel(());
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Per-connection failures (the peer reset before accept)
                // are routine; anything else (out of file descriptors)
                // gets a pause so the loop does not spin.
                if !matches!(
                    error.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                ) {
                    tracing::error!(%error, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        // Small responses should not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(WriteStallTimeout::new(stream, timeouts.write));
        let read_timeout = timeouts.read;
        let service = router
            .clone()
            .map_request(move |request: http::Request<Incoming>| {
                request.map(|body| Body::new(DeadlineBody::new(body, read_timeout)))
            });
        let hyper_service = TowerToHyperService::new(service);
        let shutdown = shutdown.clone();
        let close_rx = close_rx.clone();
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout((!read_timeout.is_zero()).then_some(read_timeout));
            // As axum::serve: WebSockets over HTTP/2 need CONNECT.
            builder
                .http2()
                .timer(TokioTimer::new())
                .enable_connect_protocol();
            let mut connection =
                std::pin::pin!(builder.serve_connection_with_upgrades(io, hyper_service));
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
            drop(close_rx);
        });
    }
    drop(listener);
    drop(close_rx);
    close_tx.closed().await;
    Ok(())
}

/// A request body that fails with [`BodyReadTimeout`] once its deadline
/// passes before the client sent all of it.
struct DeadlineBody {
    inner: Incoming,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration) -> DeadlineBody {
        let deadline = (!timeout.is_zero())
            .then(|| Box::pin(tokio::time::sleep_until(Instant::now() + timeout)));
        DeadlineBody { inner, deadline }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        if let Some(deadline) = self.deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Some(Err(Box::new(BodyReadTimeout))));
            }
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        http_body::Body::size_hint(&self.inner)
    }
}

/// A connection whose writes fail with `TimedOut` after making no progress
/// for `timeout`.
struct WriteStallTimeout {
    inner: TcpStream,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
    armed: bool,
}

impl WriteStallTimeout {
    fn new(inner: TcpStream, timeout: Duration) -> WriteStallTimeout {
        WriteStallTimeout {
            inner,
            timeout,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: false,
        }
    }

    /// Bookkeeping after a write-side poll: progress disarms the timer, a
    /// stall arms it (once) and fails when it fires.
    fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                self.armed = false;
                Poll::Ready(result)
            }
            Poll::Pending if self.timeout.is_zero() => Poll::Pending,
            Poll::Pending => {
                if !self.armed {
                    self.timer.as_mut().reset(Instant::now() + self.timeout);
                    self.armed = true;
                }
                match self.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client did not read the response within the server's write timeout",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncRead for WriteStallTimeout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteStallTimeout {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::routing::post;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(timeouts: HttpTimeouts) -> (std::net::SocketAddr, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route(
            "/echo",
            post(|body: Body| async move {
                match axum::body::to_bytes(body, usize::MAX).await {
                    Ok(bytes) => (http::StatusCode::OK, bytes.len().to_string()),
                    Err(err) if BodyReadTimeout::is_cause_of(&err) => {
                        (http::StatusCode::REQUEST_TIMEOUT, "timeout".to_string())
                    }
                    Err(err) => (http::StatusCode::BAD_REQUEST, err.to_string()),
                }
            }),
        );
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(listener, router, timeouts, shutdown.clone()));
        (addr, shutdown)
    }

    /// Reads until the server closes the connection; panics if it does
    /// not within 10 s.
    async fn read_reply(stream: &mut TcpStream) -> String {
        let mut reply = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply)).await;
        assert!(closed.is_ok(), "the server kept the connection open");
        String::from_utf8_lossy(&reply).into_owned()
    }

    #[tokio::test]
    async fn slow_body_gets_408_and_prompt_body_passes() {
        let (addr, shutdown) = start(HttpTimeouts {
            read: Duration::from_millis(300),
            write: Duration::from_secs(5),
        })
        .await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n12345")
            .await
            .unwrap();
        let reply = read_reply(&mut stream).await;
        assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");

        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
            .await
            .unwrap();
        let reply = read_reply(&mut stream).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.ends_with("\r\n\r\n3"), "{reply}");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn slow_headers_close_the_connection() {
        let (addr, shutdown) = start(HttpTimeouts {
            read: Duration::from_millis(300),
            write: Duration::from_secs(5),
        })
        .await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nHost:")
            .await
            .unwrap();
        // The server hangs up (hyper may answer 408 to an incomplete head).
        let reply = read_reply(&mut stream).await;
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
            "{reply}"
        );
        shutdown.cancel();
    }

    /// A response body of `left` MiB of zeros, made as it is sent.
    struct Zeros {
        chunk: Bytes,
        left: usize,
    }

    impl http_body::Body for Zeros {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            self.left -= 1;
            Poll::Ready(Some(Ok(Frame::data(self.chunk.clone()))))
        }
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_cut_off() {
        const MIB: usize = 1 << 20;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route(
            "/big",
            axum::routing::get(|| async {
                Body::new(Zeros {
                    chunk: Bytes::from(vec![0u8; MIB]),
                    left: 256,
                })
            }),
        );
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(
            listener,
            router,
            HttpTimeouts {
                read: Duration::from_secs(5),
                write: Duration::from_millis(300),
            },
            shutdown.clone(),
        ));
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        // Read nothing for a while: the server's writes stall.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let reply = read_reply(&mut stream).await;
        assert!(
            reply.len() < 256 * MIB,
            "the server gave up after the stall: {} bytes arrived",
            reply.len()
        );
        shutdown.cancel();
    }

    #[tokio::test]
    async fn shutdown_returns_once_connections_are_gone() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(
            listener,
            Router::new(),
            HttpTimeouts {
                read: Duration::ZERO,
                write: Duration::ZERO,
            },
            shutdown.clone(),
        ));
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("serve returns after shutdown")
            .unwrap()
            .unwrap();
    }
}
