//! Accepting connections without letting a client stall the runtime: at most
//! [`ConnectionLimits::max_connections`] open at once (beyond that, new ones wait in the
//! kernel's backlog until one closes), a request head that is not complete within
//! [`ConnectionLimits::header_timeout`] closes its connection (hyper's `header_read_timeout`,
//! which also bounds how long a kept-alive connection may sit idle), and an `accept` that fails
//! because a resource is exhausted (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) backs off — 10 ms
//! doubling to 1 s — instead of spinning, logging it at most once a minute.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// How many connections a listener holds and how long a request head may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// From a connection's start (or the end of its previous response) to a complete request
    /// head; then the connection is closed.
    pub header_timeout: Duration,
    /// From a complete head to a complete body; then the request gets 408.
    pub body_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
        }
    }
}

/// The first and the longest pause after an `accept` that failed for lack of a resource.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// A failing `accept` is logged at most once in this long (at the file limit, accepts fail and
/// succeed by turns as connections close).
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Whether an `accept` error means a resource is exhausted (waiting helps), rather than one
/// connection having failed (the next accept is fine).
fn exhausted(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::EMFILE | nix::libc::ENFILE | nix::libc::ENOBUFS | nix::libc::ENOMEM)
    )
}

/// Serves HTTP/1.1 on `listener` with `service` until `shutdown` turns true. `log` is called
/// when `accept` fails for lack of a resource, at most once every [`WARN_EVERY`].
pub(crate) async fn serve<S, F>(
    listener: TcpListener,
    limits: ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
    log: impl Fn(&str, String),
    service: S,
) where
    S: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut delay = BACKOFF.0;
    let mut warned: Option<tokio::time::Instant> = None;
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if exhausted(&e) => {
                    if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                        warned = Some(tokio::time::Instant::now());
                        log("warn", format!(
                            "cannot accept connections on {}: {e}; retrying with backoff until some close",
                            listener.local_addr().map(|a| a.to_string()).unwrap_or_default()
                        ));
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => return,
                    }
                    delay = (delay * 2).min(BACKOFF.1);
                    continue;
                }
                // One connection failed (reset before it was accepted, ...): the next is fine.
                Err(_) => continue,
            },
            _ = shutdown.changed() => return,
        };
        delay = BACKOFF.0;
        let service = service.clone();
        tokio::spawn(async move {
            let _slot = slot; // held while the connection is open
            connection(stream, peer, limits, service).await;
        });
    }
}

async fn connection<S, F>(stream: TcpStream, peer: SocketAddr, limits: ConnectionLimits, service: S)
where
    S: Fn(Request<Incoming>, SocketAddr) -> F + Send + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |req| {
        let response = service(req, peer);
        async move { Ok::<_, Infallible>(response.await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
