//! The gateway's listener: HTTP/1.1 with keep-alive over hyper, one task per connection on
//! the apps' runtime, a limit on open connections, headers within a deadline, and a
//! graceful shutdown that stops accepting, lets requests in flight finish, and closes
//! idle connections.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::gateway::{BoxError, Gateway, text};

/// Most connections open at once; more are closed at once after a `503`.
pub const MAX_CONNECTIONS: usize = 4096;
/// How long a client has to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A running listener; [`Listening::shutdown`] ends it.
#[derive(Debug)]
pub struct Listening {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    conns: Arc<Semaphore>,
    task: tokio::task::JoinHandle<()>,
}

impl Listening {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, asks every connection to close once its request in flight is
    /// answered, and waits for them, at most `within`. Returns how many were still open.
    pub async fn shutdown(self, within: Duration) -> usize {
        let _ = self.stop.send(true);
        self.task.abort();
        let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
        match tokio::time::timeout(within, self.conns.acquire_many(all)).await {
            Ok(_) => 0,
            Err(_) => MAX_CONNECTIONS - self.conns.available_permits(),
        }
    }
}

impl Gateway {
    /// Serves `listener` on the current runtime until [`Listening::shutdown`].
    pub fn listen(&self, listener: TcpListener) -> std::io::Result<Listening> {
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let conns = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let task = tokio::spawn(accept(self.clone(), listener, conns.clone(), stopped));
        Ok(Listening {
            addr,
            stop,
            conns,
            task,
        })
    }
}

async fn accept(gw: Gateway, listener: TcpListener, conns: Arc<Semaphore>, stopped: watch::Receiver<bool>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors, or a connection reset before accept: go on.
                tracing::warn!(error = %e, "http gateway: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = conns.clone().try_acquire_owned() else {
            tokio::spawn(overloaded(stream));
            continue;
        };
        let gw = gw.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let gw = gw.clone();
                async move {
                    let req = req.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync());
                    Ok::<_, Infallible>(gw.route(req).await)
                }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            let r = tokio::select! {
                r = conn.as_mut() => r,
                () = async { let _ = stopped.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "http gateway: connection ended with an error");
            }
        });
    }
}

/// Past the connection limit: a `503` and close, rather than a client left hanging.
async fn overloaded(stream: tokio::net::TcpStream) {
    let svc = hyper::service::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
        let mut r = text(
            http::StatusCode::SERVICE_UNAVAILABLE,
            "service unavailable: too many connections",
        );
        r.headers_mut()
            .insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
        Ok::<_, Infallible>(r)
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(2))
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), svc);
    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
}
