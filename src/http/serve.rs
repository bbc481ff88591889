//! Serving the router, with the limits a public port needs.
//!
//! `axum::serve` has no header or body read timeouts and no cap on
//! connections, so a client that never finishes its headers, or never sends
//! the body it declared, holds a connection (and its memory) forever, and
//! enough of them hold the node. Here, as in mini-redis, a semaphore caps
//! the connections (the next is accepted only when one closes), headers must
//! arrive within [`Limits::header_timeout`], and each connection is watched
//! for graceful shutdown: on stop the listener closes at once and open
//! connections get [`Limits::drain_timeout`] to finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::protocol_errors::JsonRefusals;

/// The limits of the HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once; the next waits in the kernel's backlog.
    pub max_connections: usize,
    /// A request's headers must arrive within this.
    pub header_timeout: Duration,
    /// Bytes of request head hyper buffers; a longer head is refused (431).
    pub max_head_bytes: usize,
    /// How long open connections may take to finish once shutdown begins.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            max_head_bytes: 64 * 1024,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Serve `app` on `listener` until `shutdown` resolves, then let open
/// connections finish (up to the drain timeout).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    // HTTP/1 only: sniffing for an HTTP/2 preface waits for bytes with no
    // timeout of its own, so a silent client would hold its place forever.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_head_bytes)
        .max_buf_size(limits.max_head_bytes.max(8192) * 2);
    tokio::pin!(shutdown);
    loop {
        // Wait for room before accepting: past the cap, new clients wait in
        // the backlog instead of being accepted and starved.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(err) => {
                    // Out of file descriptors and the like: pause, go on.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = builder.serve_connection(TokioIo::new(JsonRefusals::new(stream)), service);
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = watched.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?limits.drain_timeout, "open connections did not finish in time");
    }
}
