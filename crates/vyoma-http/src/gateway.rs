//! The gateway's table of apps: for each HTTP app its handler (while it runs), its limits
//! and its counts; and dispatching one request to an app, from the listener (routed) or
//! from another app (by name). No sockets here: the listener is `server.rs`, and the
//! handler (running the request in a fresh instance) is the supervisor's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use vyoma_manifest::{HttpConfig, Manifest, RESERVED_PATH_PREFIX};

use crate::router::{Router, request_host};

/// An error carried in a body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Request and response bodies between the gateway and handlers.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// The gateway's own health path: `200 ok` while it serves.
pub const HEALTH_PATH: &str = "/.well-known/vyoma/health";

/// What runs one app's requests (the supervisor, in a fresh instance each).
pub trait Handler: Send + Sync + 'static {
    /// Handles `req`; `ticket` is the request's place among the app's requests in flight,
    /// to be dropped when the request's work has ended (after the response body).
    fn handle(&self, req: Request<Body>, ticket: Ticket) -> BoxFuture<'static, Result<Response<Body>, Failure>>;
}

/// Why a handler produced no response; the client gets `status` and a generic text (the
/// details are in the app's log, never sent to the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The status the client gets.
    pub status: StatusCode,
    /// What happened, for the access log.
    pub message: String,
}

/// One request's place among its app's requests in flight; dropping it frees the place.
#[derive(Debug)]
pub struct Ticket {
    _permit: OwnedSemaphorePermit,
    slot: Arc<Slot>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.slot.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.slot.idle.notify_waiters();
        }
    }
}

/// An HTTP app's counts since the supervisor started, for `ps` and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpCounts {
    /// Requests handed to the app.
    pub requests: u64,
    /// Of those, how many ended in a server error (a trap, a timeout, a 5xx answer).
    pub errors: u64,
    /// Requests refused before reaching the app: too large, over its limit in flight, or
    /// while it was not running.
    pub rejected: u64,
    /// Requests running now.
    pub in_flight: u64,
}

/// One app's place in the gateway.
struct Slot {
    name: String,
    config: HttpConfig,
    places: Arc<Semaphore>,
    handler: RwLock<Option<Arc<dyn Handler>>>,
    requests: AtomicU64,
    errors: AtomicU64,
    rejected: AtomicU64,
    in_flight: AtomicU64,
    idle: Notify,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").field("app", &self.name).finish_non_exhaustive()
    }
}

/// Why a request from another app did not reach its target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    /// No HTTP app of that name.
    #[error("no HTTP app `{0}`")]
    NotFound(String),
    /// It exists but does not take requests now (not running, or at its limit).
    #[error("{0}")]
    Unavailable(String),
}

/// The HTTP gateway: routes and apps. Cheap to clone.
#[derive(Clone, Default)]
pub struct Gateway {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    router: RwLock<Arc<Router>>,
    slots: RwLock<HashMap<String, Arc<Slot>>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("routes", &read(&self.inner.router).len())
            .finish_non_exhaustive()
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl Gateway {
    /// A gateway routing to `router`'s apps; none is served until attached.
    pub fn new(router: Router) -> Gateway {
        let g = Gateway::default();
        *write(&g.inner.router) = Arc::new(router);
        g
    }

    /// Replaces the routing table (an app set changed).
    pub fn set_router(&self, router: Router) {
        *write(&self.inner.router) = Arc::new(router);
    }

    /// Starts sending `app`'s requests to `handler`, with the limits in its manifest. A
    /// handler already attached is replaced: new requests go to the new one, requests in
    /// flight finish on the old one.
    pub fn attach(&self, app: &Manifest, handler: Arc<dyn Handler>) {
        let mut slots = write(&self.inner.slots);
        let slot = slots
            .entry(app.name.clone())
            .or_insert_with(|| {
                Arc::new(Slot {
                    name: app.name.clone(),
                    config: app.http.clone(),
                    places: Arc::new(Semaphore::new(app.http.max_in_flight)),
                    handler: RwLock::new(None),
                    requests: AtomicU64::new(0),
                    errors: AtomicU64::new(0),
                    rejected: AtomicU64::new(0),
                    in_flight: AtomicU64::new(0),
                    idle: Notify::new(),
                })
            })
            .clone();
        drop(slots);
        *write(&slot.handler) = Some(handler);
    }

    /// Stops sending `app` requests if `handler` is still the one attached (a handler that
    /// replaced it stays), without waiting for requests in flight.
    pub fn release(&self, app: &str, handler: &Arc<dyn Handler>) {
        if let Some(slot) = read(&self.inner.slots).get(app) {
            let mut h = write(&slot.handler);
            if h.as_ref().is_some_and(|h| Arc::ptr_eq(h, handler)) {
                *h = None;
            }
        }
    }

    /// Stops sending `app` requests (they get `503` until it is attached again) and waits
    /// until its requests in flight have ended, at most `within`. Returns how many were
    /// still running at the deadline.
    pub async fn detach(&self, app: &str, within: Duration) -> u64 {
        let Some(slot) = read(&self.inner.slots).get(app).cloned() else {
            return 0;
        };
        *write(&slot.handler) = None;
        self.drained(&slot, within).await
    }

    /// Waits until `app` has no request in flight, at most `within`, while it goes on
    /// taking new ones (an update waits so before swapping its handler). Returns how many
    /// were running at the deadline.
    pub async fn settle(&self, app: &str, within: Duration) -> u64 {
        let Some(slot) = read(&self.inner.slots).get(app).cloned() else {
            return 0;
        };
        self.drained(&slot, within).await
    }

    async fn drained(&self, slot: &Slot, within: Duration) -> u64 {
        let drained = async {
            loop {
                let idle = slot.idle.notified();
                if slot.in_flight.load(Ordering::Acquire) == 0 {
                    return;
                }
                idle.await;
            }
        };
        let _ = tokio::time::timeout(within, drained).await;
        slot.in_flight.load(Ordering::Acquire)
    }

    /// `app`'s counts, if it has been attached at least once.
    pub fn counts(&self, app: &str) -> Option<HttpCounts> {
        let slot = read(&self.inner.slots).get(app).cloned()?;
        Some(HttpCounts {
            requests: slot.requests.load(Ordering::Relaxed),
            errors: slot.errors.load(Ordering::Relaxed),
            rejected: slot.rejected.load(Ordering::Relaxed),
            in_flight: slot.in_flight.load(Ordering::Relaxed),
        })
    }

    /// How many routes the table holds.
    pub fn route_count(&self) -> usize {
        read(&self.inner.router).len()
    }

    /// Serves one request from the network: the gateway's health path, else the app its
    /// route names, else `404`.
    pub async fn route(&self, req: Request<Body>) -> Response<Body> {
        let path = req.uri().path();
        if path == HEALTH_PATH {
            return text(StatusCode::OK, "ok");
        }
        if path.starts_with(RESERVED_PATH_PREFIX) {
            return text(StatusCode::NOT_FOUND, "not found");
        }
        let host = request_host(&req);
        let router = read(&self.inner.router).clone();
        let Some(m) = router.find(&host, path) else {
            return text(StatusCode::NOT_FOUND, "not found: no app serves this path");
        };
        let slot = read(&self.inner.slots).get(m.app).cloned();
        match slot {
            Some(slot) => serve(&slot, req).await,
            None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("service unavailable: app `{}` is not running", m.app),
            ),
        }
    }

    /// Serves one request from another app, by name (no routes involved). The caller's
    /// grants are the supervisor's to check first.
    pub async fn call(&self, app: &str, req: Request<Body>) -> Result<Response<Body>, Unreachable> {
        let slot = read(&self.inner.slots)
            .get(app)
            .cloned()
            .ok_or_else(|| Unreachable::NotFound(app.to_string()))?;
        if read(&slot.handler).is_none() {
            return Err(Unreachable::Unavailable(format!("app `{app}` is not running")));
        }
        Ok(serve(&slot, req).await)
    }
}

/// The largest refused body read to its end before answering (larger: the connection is
/// closed after the answer).
const DRAIN_LIMIT: u64 = 1 << 20;

/// Reads and discards a refused body (at most [`DRAIN_LIMIT`] bytes, within 10 s);
/// whether it was read to its end.
async fn drain(mut body: Body) -> bool {
    let read = async {
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            n += frame.data_ref().map_or(0, |d| d.len() as u64);
            if n > DRAIN_LIMIT {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap_or(false)
}

/// A request refused before reaching the app: counted, logged at debug level, answered.
fn refuse(slot: &Slot, status: StatusCode, msg: &str) -> Response<Body> {
    slot.rejected.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(app = %slot.name, %status, %msg, "http request refused");
    text(status, msg)
}

/// The app's handler, limits and counts around one request.
async fn serve(slot: &Arc<Slot>, req: Request<Body>) -> Response<Body> {
    let name = slot.name.as_str();
    let Some(handler) = read(&slot.handler).clone() else {
        return refuse(
            slot,
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("service unavailable: app `{name}` is not running"),
        );
    };
    let max_body = slot.config.max_body;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > max_body) {
        let msg = format!("payload too large: app `{name}` takes request bodies up to {max_body} bytes");
        // A client still sending the body would see the connection reset instead of this
        // answer: read a moderately large one to its end; close after a larger one.
        let drained = n <= DRAIN_LIMIT && drain(req.into_body()).await;
        let mut r = refuse(slot, StatusCode::PAYLOAD_TOO_LARGE, &msg);
        if !drained {
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        return r;
    }
    let Ok(permit) = slot.places.clone().try_acquire_owned() else {
        let mut r = refuse(
            slot,
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "service unavailable: app `{name}` is handling its most requests at once ({})",
                slot.config.max_in_flight
            ),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    slot.requests.fetch_add(1, Ordering::Relaxed);
    slot.in_flight.fetch_add(1, Ordering::AcqRel);
    let ticket = Ticket {
        _permit: permit,
        slot: slot.clone(),
    };
    // A body longer than declared, or undeclared and too long, fails the app's read.
    let req = req.map(|b| {
        Limited::new(b, usize::try_from(max_body).unwrap_or(usize::MAX))
            .map_err(|e| e as BoxError)
            .boxed_unsync()
    });
    match handler.handle(req, ticket).await {
        Ok(resp) => {
            if resp.status().is_server_error() {
                slot.errors.fetch_add(1, Ordering::Relaxed);
            }
            resp
        }
        Err(f) => {
            slot.errors.fetch_add(1, Ordering::Relaxed);
            // The message can carry app-chosen text (a trap's frames): debug-escaped.
            tracing::debug!(app = %name, status = %f.status, message = ?f.message, "http request failed");
            let what = match f.status {
                StatusCode::GATEWAY_TIMEOUT => format!("gateway timeout: app `{name}` did not answer in time"),
                StatusCode::SERVICE_UNAVAILABLE => {
                    format!("service unavailable: app `{name}` cannot take requests now")
                }
                StatusCode::BAD_REQUEST => "bad request".to_string(),
                _ => format!("internal server error: app `{name}` failed handling this request"),
            };
            text(f.status, &what)
        }
    }
}

/// A short plain-text response: the status's own words, and what to do.
pub fn text(status: StatusCode, msg: &str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(format!("{msg}\n")))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests;
