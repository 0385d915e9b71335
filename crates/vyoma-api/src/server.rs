//! The HTTP(S) server: accepts connections on a thread and Tokio runtime of its own (never
//! the workers that run apps, so 200 busy apps do not delay `ps`), speaks HTTP/1.1 with
//! hyper, TLS with rustls, and turns each request into a [`Call`] with the pure router
//! (`vyoma_control::http::route`), checks the token, carries the command out with the same
//! `execute` as the console and answers JSON.
//!
//! Limits: at most [`MAX_CONNECTIONS`] connections (more are answered 503 and closed),
//! request headers within [`HEADER_TIMEOUT`], bodies of at most
//! [`vyoma_control::http::MAX_BODY`] bytes (a blob upload, [`vyoma_control::http::MAX_BLOB`]). Every response is logged through `tracing`
//! (target `vyoma_api::access`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::{BodyExt as _, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use vyoma_control::http::{
    self, ApiError, Call, FollowItem, KEEPALIVE, credentials_in_query, credentials_in_query_error, is_probe,
};
use vyoma_control::{Command, Reply};
use vyoma_supervisor::{DisplayRequestError, Supervisor, SupervisorError, UpdateError, console};

use crate::ServerCredentials;
use crate::metrics::Snapshot;
use crate::token::check_bearer;

/// How long a shutdown through the API waits for its clients to have their answers (and
/// close their connections) before the process may exit.
pub const REPLY_GRACE: Duration = Duration::from_secs(2);

/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 256;
/// A client must send its request headers within this.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

type Body = BoxBody<Bytes, Infallible>;

/// Where and how to serve.
#[derive(Debug)]
pub struct ApiConfig {
    /// The bound socket to serve on (see [`bind`]).
    pub listener: std::net::TcpListener,
    /// The token digest, and TLS when on.
    pub credentials: ServerCredentials,
}

/// Binds `addr` (port 0: any free port) for [`Api::spawn`].
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, ServeError> {
    std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr, source })
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Plain HTTP was asked for on an address other than loopback.
    #[error(
        "refusing plain HTTP on {0}: the management API carries a bearer token, so it serves HTTPS on any address but loopback; give it TLS credentials (see docs/api.md)"
    )]
    PlainOffLoopback(SocketAddr),
    /// The server thread could not start.
    #[error("cannot start the API thread: {0}")]
    Thread(std::io::Error),
}

struct State {
    sup: Supervisor,
    token: crate::TokenDigest,
    started: AtomicBool,
    since: Instant,
    connections: AtomicUsize,
    /// Told each time the last open connection closes.
    idle: tokio::sync::Notify,
    shutdown: watch::Sender<bool>,
}

/// A running management API.
#[derive(Debug)]
pub struct Api {
    addr: SocketAddr,
    tls: bool,
    state: Arc<State>,
    shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

impl Api {
    /// Serves on `config.listener` from a thread of its own until the process ends.
    pub fn spawn(sup: &Supervisor, config: ApiConfig) -> Result<Api, ServeError> {
        let tls = config.credentials.tls.clone();
        let tls_on = tls.is_some();
        let listener = config.listener;
        let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
        let addr = listener
            .local_addr()
            .map_err(|source| ServeError::Bind { addr: unknown, source })?;
        if tls.is_none() && !addr.ip().is_loopback() {
            return Err(ServeError::PlainOffLoopback(addr));
        }
        listener
            .set_nonblocking(true)
            .map_err(|source| ServeError::Bind { addr, source })?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let state = Arc::new(State {
            sup: sup.clone(),
            token: config.credentials.token,
            started: AtomicBool::new(false),
            since: Instant::now(),
            connections: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
            shutdown: shutdown_tx,
        });
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let st = state.clone();
        std::thread::Builder::new()
            .name("vyoma-api".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!("management API not served: cannot start its runtime: {e}");
                        return;
                    }
                };
                rt.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(l) => accept_loop(l, st, acceptor).await,
                        Err(e) => tracing::error!("management API not served: {e}"),
                    }
                });
            })
            .map_err(ServeError::Thread)?;
        Ok(Api {
            addr,
            tls: tls_on,
            state,
            shutdown: shutdown_rx,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` or `https://ADDR`.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// Marks start-up as over: `/readyz` may now say ready.
    pub fn set_started(&self) {
        self.state.started.store(true, Ordering::Release);
    }

    /// Resolves once a client has shut the supervisor down (`POST /v1/shutdown`: every app
    /// is stopped by then) and has its answer: once the API's connections have closed, at
    /// most [`REPLY_GRACE`] later. The process may then exit without cutting off the reply
    /// (the client would see a dropped connection for a shutdown that happened).
    pub async fn shutdown_requested(&mut self) {
        let _ = self.shutdown.wait_for(|s| *s).await;
        let st = &self.state;
        let _ = tokio::time::timeout(REPLY_GRACE, async {
            loop {
                // Taken before the count is read: a close in between still wakes it.
                let idle = st.idle.notified();
                if st.connections.load(Ordering::Acquire) == 0 {
                    return;
                }
                idle.await;
            }
        })
        .await;
    }
}

async fn accept_loop(listener: TcpListener, st: Arc<State>, tls: Option<tokio_rustls::TlsAcceptor>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!("management API: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let st = st.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let n = st.connections.fetch_add(1, Ordering::AcqRel) + 1;
            let overloaded = n > MAX_CONNECTIONS;
            connection(stream, peer, st.clone(), tls, overloaded).await;
            if st.connections.fetch_sub(1, Ordering::AcqRel) == 1 {
                st.idle.notify_waiters();
            }
        });
    }
}

/// Serves one connection.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    st: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    overloaded: bool,
) {
    // A TLS connection starts with a handshake record (0x16). Plain HTTP to the TLS port is
    // answered in plain HTTP, saying to use https; TLS to a plain port is just closed.
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(HEADER_TIMEOUT, stream.peek(&mut first)).await;
    if !matches!(peeked, Ok(Ok(1))) {
        return;
    }
    let is_tls = first[0] == 0x16;
    match (tls, is_tls) {
        (Some(acceptor), true) => match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(s)) => serve(TokioIo::new(s), peer, st, overloaded).await,
            Ok(Err(e)) => tracing::debug!(target: "vyoma_api::access", %peer, "TLS handshake failed: {e}"),
            Err(_) => tracing::debug!(target: "vyoma_api::access", %peer, "TLS handshake timed out"),
        },
        (Some(_), false) => {
            let addr = stream.local_addr().map(|a| a.to_string()).unwrap_or_default();
            let e = ApiError::new(
                400,
                "tls_required",
                format!("this port speaks HTTPS: use https://{addr} (with the CA from your client config)"),
            );
            let body = e.to_json();
            let response = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            tracing::info!(target: "vyoma_api::access", %peer, status = 400, "plain HTTP to the TLS port");
            use tokio::io::AsyncWriteExt as _;
            let mut stream = stream;
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        (None, true) => {
            tracing::info!(target: "vyoma_api::access", %peer, "TLS to the plain-HTTP port: closed");
        }
        (None, false) => serve(TokioIo::new(stream), peer, st, overloaded).await,
    }
}

async fn serve<I>(io: TokioIo<I>, peer: SocketAddr, st: Arc<State>, overloaded: bool)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let st = st.clone();
        async move {
            let started = Instant::now();
            let method = req.method().to_string();
            let path = req.uri().path().to_string();
            let response = if overloaded {
                let mut r = error(&ApiError::new(
                    503,
                    "overloaded",
                    format!("too many connections (at most {MAX_CONNECTIONS}); try again shortly"),
                ));
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                r
            } else {
                handle(&st, req).await
            };
            tracing::info!(
                target: "vyoma_api::access",
                %peer,
                method = %method,
                path = %path.escape_debug(),
                status = response.status().as_u16(),
                ms = started.elapsed().as_secs_f64() * 1e3,
            );
            Ok::<_, Infallible>(response)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(64 << 10)
        .serve_connection(io, service);
    if let Err(e) = conn.await {
        tracing::debug!(target: "vyoma_api::access", %peer, "connection ended: {e}");
    }
}

fn full(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json(status: StatusCode, body: String) -> Response<Body> {
    full(status, "application/json", body)
}

fn error(e: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = json(status, e.to_json());
    if e.status == 401 {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// The API's status and code for a supervisor error.
pub fn api_error(e: &SupervisorError) -> ApiError {
    let (status, code) = match e {
        SupervisorError::UnknownApp(_) => (404, "unknown_app"),
        SupervisorError::Invalid { .. } => (409, "invalid_app"),
        SupervisorError::NoIpc(_) => (409, "no_ipc"),
        SupervisorError::Ipc { .. } => (409, "ipc_refused"),
        SupervisorError::Transition { .. } => (409, "wrong_state"),
        SupervisorError::WaitTimedOut { .. } => (504, "wait_timed_out"),
        SupervisorError::Display(d) => match d {
            DisplayRequestError::NoDisplay => (409, "no_display"),
            DisplayRequestError::Display(vyoma_display::DisplayError::UnknownApp(_))
            | DisplayRequestError::Inject(vyoma_display::InjectError::NotOnDisplay(_))
            | DisplayRequestError::NotOnDisplay { .. } => (404, "not_on_display"),
            DisplayRequestError::Display(_) | DisplayRequestError::Inject(_) => (409, "display_refused"),
            DisplayRequestError::Screenshot { .. } => (500, "screenshot_failed"),
        },
        SupervisorError::Update(u) => match **u {
            UpdateError::NoStore => (409, "no_store"),
            UpdateError::ShuttingDown => (503, "shutting_down"),
            UpdateError::Manifest { .. } | UpdateError::OtherApp { .. } => (422, "invalid_manifest"),
            UpdateError::Read { .. } => (400, "unreadable"),
            UpdateError::NoBlob(_) => (404, "no_blob"),
            UpdateError::BlobMismatch { .. } => (400, "blob_mismatch"),
            UpdateError::Component { .. } => (422, "invalid_component"),
            UpdateError::Memory { .. } => (422, "over_memory_budget"),
            UpdateError::Breaking { .. } => (409, "breaking_change"),
            UpdateError::Exists(_) => (409, "app_exists"),
            UpdateError::Needed { .. } => (409, "needed_by_others"),
            UpdateError::Full { .. } => (507, "no_room"),
            UpdateError::Store(vyoma_supervisor::vyoma_store::StoreError::Refused(_)) => (409, "refused"),
            UpdateError::Store(_) => (500, "store_failed"),
        },
    };
    ApiError::new(status, code, e.to_string())
}

async fn handle(st: &Arc<State>, req: Request<Incoming>) -> Response<Body> {
    // A request refused before its body was read leaves that body on the connection: the
    // connection cannot carry another request, and the client is told so.
    let has_body = !hyper::body::Body::is_end_stream(req.body());
    let mut body_read = false;
    let mut response = match respond(st, req, &mut body_read).await {
        Ok(r) => r,
        Err(e) => error(&e),
    };
    if has_body && !body_read {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The largest refused body read to its end (so its sender gets the refusal rather than a
/// reset connection); larger ones close the connection.
const DRAIN_LIMIT: usize = 1 << 20;

/// Reads and discards a refused body (at most [`DRAIN_LIMIT`], within the header
/// timeout); whether it was read to its end.
async fn drain(body: Incoming) -> bool {
    let read = Limited::new(body, DRAIN_LIMIT).collect();
    matches!(tokio::time::timeout(HEADER_TIMEOUT, read).await, Ok(Ok(_)))
}

async fn respond(st: &Arc<State>, req: Request<Incoming>, body_read: &mut bool) -> Result<Response<Body>, ApiError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    if credentials_in_query(query) {
        return Err(credentials_in_query_error());
    }
    if !is_probe(path) {
        let header = parts.headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
        check_bearer(header, &st.token).map_err(|r| ApiError::new(401, "unauthorized", r.message()))?;
    }
    // A blob (a component being uploaded) may be far larger than any other body.
    let limit = http::body_limit(parts.method.as_str(), path);
    let too_large = || {
        ApiError::new(
            413,
            "too_large",
            format!("request body over the limit of {limit} bytes"),
        )
    };
    if let Some(len) = parts.headers.get(header::CONTENT_LENGTH) {
        let len: u64 = len.to_str().ok().and_then(|l| l.parse().ok()).unwrap_or(u64::MAX);
        if len > limit as u64 {
            // A client still sending a body it was refused would see the connection reset
            // instead of the answer: read a moderately large one to its end first.
            if len <= DRAIN_LIMIT as u64 && drain(body).await {
                *body_read = true;
            }
            return Err(too_large());
        }
    }
    let body = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|_| too_large())?
        .to_bytes();
    *body_read = true;
    let call = http::route(&http::Request {
        method: parts.method.as_str(),
        path,
        query,
        body: &body,
    })?;
    match call {
        Call::Live => Ok(json(StatusCode::OK, r#"{"status":"live"}"#.into())),
        Call::Ready => {
            // Says nothing but ready or not: probes carry no token.
            if ready(st) {
                Ok(json(StatusCode::OK, r#"{"status":"ready"}"#.into()))
            } else {
                Ok(json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    r#"{"status":"not_ready"}"#.into(),
                ))
            }
        }
        Call::Metrics => {
            let snapshot = Snapshot::take(&st.sup, ready(st), st.since.elapsed());
            Ok(full(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                snapshot.encode(),
            ))
        }
        Call::Follow { app, after, duration } => follow(st, &app, after, duration),
        Call::Screenshot { app } => {
            let (png, _) = st
                .sup
                .screenshot_png(app.as_deref())
                .map_err(|e| api_error(&e.into()))?;
            Ok(full(StatusCode::OK, "image/png", png))
        }
        Call::PutBlob { digest } => {
            st.sup
                .store_blob(&digest, body.to_vec())
                .await
                .map_err(|e| api_error(&e))?;
            Ok(json(
                StatusCode::CREATED,
                serde_json::json!({ "stored": digest }).to_string(),
            ))
        }
        Call::Command(cmd) => {
            let shutdown = cmd == Command::Shutdown;
            let reply = console::execute(&st.sup, cmd).await.map_err(|e| api_error(&e))?;
            if shutdown {
                let _ = st.shutdown.send(true);
            }
            let body = serde_json::to_string(&reply).map_err(|e| ApiError::new(500, "internal", e.to_string()))?;
            let status = match reply {
                Reply::Started(_) | Reply::Restarting(_) | Reply::Sent { .. } => StatusCode::ACCEPTED,
                _ => StatusCode::OK,
            };
            Ok(json(status, body))
        }
    }
}

fn ready(st: &State) -> bool {
    st.started.load(Ordering::Acquire) && st.sup.not_ready().is_empty()
}

/// The NDJSON follow stream: the held lines after `after`, then new ones as they come, a
/// keep-alive while quiet, and an `end` line when `duration` passes or the log closes.
fn follow(
    st: &Arc<State>,
    app: &str,
    after: Option<u64>,
    duration: Option<Duration>,
) -> Result<Response<Body>, ApiError> {
    let log = st.sup.log(app).map_err(|e| api_error(&e))?;
    let rx = log.subscribe();
    let deadline = duration.map(|d| tokio::time::Instant::now() + d);
    struct Follow {
        log: Arc<vyoma_supervisor::AppLog>,
        rx: watch::Receiver<u64>,
        next: u64,
        deadline: Option<tokio::time::Instant>,
        first: bool,
        done: bool,
    }
    let state = Follow {
        log,
        rx,
        next: after.map_or(0, |a| a.saturating_add(1)),
        deadline,
        first: true,
        done: false,
    };
    let lines = |f: &mut Follow| -> Option<Bytes> {
        let (new, next) = f.log.since(f.next);
        f.next = next;
        if new.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(new.len() * 96);
        for l in new {
            let _ = serde_json::to_writer(&mut out, &FollowItem::Line(l));
            out.push(b'\n');
        }
        Some(Bytes::from(out))
    };
    let end = |why: &str| {
        Bytes::from(format!(
            "{}\n",
            serde_json::to_string(&FollowItem::End { end: why.into() }).unwrap_or_default()
        ))
    };
    let stream = futures::stream::unfold(state, move |mut f| async move {
        if f.done {
            return None;
        }
        if f.first {
            f.first = false;
            // Mark what is held as seen before reading it, so no change is missed.
            f.rx.borrow_and_update();
            if let Some(b) = lines(&mut f) {
                return Some((b, f));
            }
        }
        loop {
            let sleep_until = f.deadline;
            tokio::select! {
                changed = f.rx.changed() => {
                    if changed.is_err() {
                        f.done = true;
                        return Some((end("closed"), f));
                    }
                    if let Some(b) = lines(&mut f) {
                        return Some((b, f));
                    }
                }
                () = tokio::time::sleep(KEEPALIVE) => return Some((Bytes::from_static(b"\n"), f)),
                () = async {
                    match sleep_until {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => {
                    f.done = true;
                    // Lines that came in the last moment still go out first.
                    let mut out = lines(&mut f).map(|b| b.to_vec()).unwrap_or_default();
                    out.extend_from_slice(&end("duration"));
                    return Some((Bytes::from(out), f));
                }
            }
        }
    });
    let body = StreamBody::new(stream.map(|b| Ok::<_, Infallible>(Frame::data(b))));
    let mut r = Response::new(http_body_util::BodyExt::boxed(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
