//! The host side of `wasi:http` for VyomaOS apps: serving one request in a fresh instance
//! of an HTTP app ([`Runtime::handle_http`]), and every app's outgoing requests
//! ([`Outbound`]), which are refused unless the app's manifest allows the destination
//! (`[capabilities.http] outbound`). A request to another app by name
//! (`http://NAME.vyoma.internal/...`) goes to the supervisor's [`HttpChain`] and never
//! touches the network. The destination is always the URL the app built, never an inbound
//! request's `Host` header.
//!
//! What it is not for: listening, routing and the per-app limits on requests in flight
//! (the gateway, `vyoma-http`), or deciding which app a name reaches (the supervisor).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use vyoma_ipc::Endpoint;
use vyoma_lifecycle::ExitReason;
use vyoma_manifest::{Destination, INTERNAL_SUFFIX, Manifest, OutboundRule};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{RequestOptions, WasiHttpHooks};

use crate::sandbox::{InstanceState, Publish};
use crate::{AppLog, Pacer, Runtime, StopSignal, exit, sandbox};

/// An error carried in an HTTP body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type requests and responses have between the gateway and the runtime.
pub type HttpBody = UnsyncBoxBody<Bytes, BoxError>;

/// The interface an app's component exports to be served by the gateway.
pub const INCOMING_HANDLER: &str = "wasi:http/incoming-handler";

/// Where the supervisor takes requests one app makes to another by name.
pub trait HttpChain: Send + Sync + std::fmt::Debug {
    /// Carries `req` from app `caller` to app `app`, as if it came through the gateway,
    /// if `app` accepts requests from `caller`.
    fn call(
        &self,
        caller: &str,
        app: &str,
        req: http::Request<HttpBody>,
    ) -> BoxFuture<'static, Result<http::Response<HttpBody>, ChainError>>;
}

/// Why a request to another app got no response from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// No such app, or it is not an HTTP app.
    #[error("{0}")]
    NotFound(String),
    /// The target does not accept requests from the caller.
    #[error("{0}")]
    Denied(String),
    /// The target is not running, or is at its limit of requests in flight.
    #[error("{0}")]
    Unavailable(String),
}

/// How one request's instance ended, for the gateway's counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestEnd {
    /// The handler returned.
    Done,
    /// It trapped, hit a limit, or failed in the host: the reason, as the app's log has it.
    Failed(ExitReason),
    /// It ran past the app's `[http] timeout`.
    TimedOut(Duration),
    /// The app was killed or stopped while it ran.
    Cancelled,
}

/// Why a request got no response from the app; the gateway answers with the status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// No instance could be made now (the machine's instance capacity): `503`.
    #[error("{0}")]
    Overloaded(String),
    /// The request could not be handed to the app (for example an invalid `Host`): `400`.
    #[error("{0}")]
    BadRequest(String),
    /// The handler trapped, failed or returned no response: `500`.
    #[error("{0}")]
    Failed(String),
    /// No response within the app's `[http] timeout`: `504`.
    #[error("no response within {}", humantime_ms(*.0))]
    TimedOut(Duration),
    /// The app was stopped or killed meanwhile: `503`.
    #[error("the app was stopped while handling the request")]
    Cancelled,
}

fn humantime_ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// Everything one HTTP app's requests share: its manifest, loaded component and log.
#[derive(Clone)]
pub struct HttpApp {
    /// The app's manifest (limits, grants, `[http]`).
    pub manifest: Arc<Manifest>,
    /// Its component, pre-instantiated as a `wasi:http` proxy.
    pub(crate) pre: ProxyPre<InstanceState>,
    /// Its log: what its instances print, and the supervisor's notes on failed requests.
    pub log: Arc<AppLog>,
    /// Linear memory of its instances in flight, summed, for `ps`.
    pub memory: Arc<std::sync::atomic::AtomicU64>,
    /// CPU time of its instances, for `ps`.
    pub cpu: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for HttpApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpApp")
            .field("app", &self.manifest.name)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Serves one request in a fresh instance of `app`: the response once the handler sets
    /// it; the handler runs on (streaming the body) in a task of its own, ended by the
    /// app's `[http] timeout` or by `cancel`. `done` is called once that task ends, however
    /// it ends. `ipc` is the instance's endpoint to the broker.
    pub async fn handle_http(
        self: &Arc<Self>,
        app: &HttpApp,
        ipc: Endpoint,
        req: http::Request<HttpBody>,
        cancel: impl Future<Output = ()> + Send + 'static,
        done: impl FnOnce(RequestEnd) + Send + 'static,
    ) -> Result<http::Response<HttpBody>, HandleError> {
        let place = self.instances.take().map_err(HandleError::Overloaded)?;
        let m = &app.manifest;
        let (_signal, stop) = StopSignal::new();
        let state = sandbox::instance_state(
            m,
            &app.log,
            Publish::Shared(app.memory.clone()),
            ipc,
            stop,
            // A request's instance lives for one request: it has no place on the screen.
            None,
            &self.protected,
            &self.budget,
            self.chain.get().cloned(),
        )
        .map_err(HandleError::Failed)?;
        let pacer = Pacer::new(self.policy, app.cpu.clone());
        let mut store = self.store(state, pacer.clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let req = req.map(|b| {
            b.map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(format!("request body: {e}"))))
                .boxed_unsync()
        });
        let data = store.data_mut();
        let incoming = wasmtime_wasi_http::WasiHttpView::http(data)
            .new_incoming_request(Scheme::Http, req)
            .map_err(|e| HandleError::BadRequest(format!("{e:#}")))?;
        let out = wasmtime_wasi_http::WasiHttpView::http(store.data_mut())
            .new_response_outparam(tx)
            .map_err(|e| HandleError::Failed(format!("{e:#}")))?;
        let pre = app.pre.clone();
        let timeout = m.http.timeout;
        let log = app.log.clone();
        let work = async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, out)
                .await
        };
        let instance = async move {
            let _place = place;
            let guarded = AssertUnwindSafe(tokio::time::timeout(timeout, work)).catch_unwind();
            let end = tokio::select! {
                r = guarded => match r {
                    Ok(Ok(Ok(()))) => RequestEnd::Done,
                    Ok(Ok(Err(e))) => RequestEnd::Failed(exit::classify(&e)),
                    Ok(Err(_)) => RequestEnd::TimedOut(timeout),
                    Err(p) => RequestEnd::Failed(ExitReason::Error(format!(
                        "host panic while handling the request: {}",
                        panic_text(&*p)
                    ))),
                },
                () = cancel => RequestEnd::Cancelled,
            };
            match &end {
                RequestEnd::Failed(reason) => log.note(&format!("http: request failed: {reason}")),
                RequestEnd::TimedOut(t) => log.note(&format!(
                    "http: request ran past its timeout ({}): ended",
                    humantime_ms(*t)
                )),
                RequestEnd::Done | RequestEnd::Cancelled => {}
            }
            log.flush();
            end
        };
        let lanes = self.clone();
        let task = tokio::spawn(async move {
            // Beside the connection's task that waits for its response, not on a shard.
            let seat = crate::sched::Seat::where_polled();
            let end = lanes
                .lanes
                .run(pacer, &seat, instance)
                .await
                .unwrap_or(RequestEnd::Cancelled);
            done(end.clone());
            end
        });
        match rx.await {
            Ok(Ok(resp)) => Ok(resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync())),
            Ok(Err(code)) => Err(HandleError::Failed(format!(
                "the handler answered with an error: {code:?}"
            ))),
            // The handler ended without setting a response: say how.
            Err(_) => Err(match task.await {
                Ok(RequestEnd::Done) => HandleError::Failed("the handler returned without a response".into()),
                Ok(RequestEnd::Failed(reason)) => HandleError::Failed(reason.to_string()),
                Ok(RequestEnd::TimedOut(t)) => HandleError::TimedOut(t),
                Ok(RequestEnd::Cancelled) => HandleError::Cancelled,
                Err(e) => HandleError::Failed(format!("the request's task failed: {e}")),
            }),
        }
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// An app's outgoing HTTP: the `wasi:http` hooks of its instances.
pub(crate) struct Outbound {
    app: String,
    rules: Arc<[OutboundRule]>,
    log: Arc<AppLog>,
    chain: Option<Arc<dyn HttpChain>>,
}

impl Outbound {
    pub(crate) fn new(m: &Manifest, log: &Arc<AppLog>, chain: Option<Arc<dyn HttpChain>>) -> Outbound {
        Outbound {
            app: m.name.clone(),
            rules: m.capabilities.http_outbound.iter().map(|r| r.value.clone()).collect(),
            log: log.clone(),
            chain,
        }
    }
}

/// Where an outgoing request may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Via {
    /// To the network, as addressed.
    Network,
    /// To this app, through the supervisor.
    App(String),
    /// Nowhere: why.
    Refused(String),
}

/// Decides an outgoing request's fate from its URL and the app's rules (pure).
pub(crate) fn via(uri: &http::Uri, rules: &[OutboundRule]) -> Via {
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        other => return Via::Refused(format!("scheme `{}` is not http or https", other.unwrap_or(""))),
    };
    let Some(host) = uri.host() else {
        return Via::Refused("the URL has no host".into());
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let shown = format!("{}://{host}:{port}", if https { "https" } else { "http" });
    if let Some(app) = host.strip_suffix(INTERNAL_SUFFIX) {
        return if https {
            Via::Refused(format!("{shown}: apps are called over http"))
        } else if rules.iter().any(|r| r.allows_app(app)) {
            Via::App(app.to_string())
        } else {
            Via::Refused(format!(
                "{shown}: not granted; add \"http://{app}{INTERNAL_SUFFIX}\" to [capabilities.http] outbound"
            ))
        };
    }
    let d = Destination {
        https,
        host: &host,
        port,
    };
    if rules.iter().any(|r| r.allows(&d)) {
        Via::Network
    } else {
        Via::Refused(format!("{shown}: not in [capabilities.http] outbound"))
    }
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<wasmtime_wasi_http::WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        match via(request.uri(), &self.rules) {
            Via::Network => Box::new(async move {
                let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
                Ok((
                    res.map(BodyExt::boxed_unsync),
                    Box::new(io) as Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
                ))
            }),
            Via::App(app) => {
                let Some(chain) = self.chain.clone() else {
                    return Box::new(async { Err(wasmtime_wasi_http::Error::DestinationNotFound) });
                };
                let req = request.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync());
                let call = chain.call(&self.app, &app, req);
                let log = self.log.clone();
                Box::new(async move {
                    match call.await {
                        Ok(res) => Ok((
                            res.map(|b| {
                                b.map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(e.to_string())))
                                    .boxed_unsync()
                            }),
                            Box::new(async { Ok(()) })
                                as Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
                        )),
                        Err(e) => {
                            log.note(&format!("http: request to app `{app}` refused: {e}"));
                            Err(match e {
                                ChainError::NotFound(_) => wasmtime_wasi_http::Error::DestinationNotFound,
                                ChainError::Denied(_) => wasmtime_wasi_http::Error::HttpRequestDenied,
                                ChainError::Unavailable(_) => wasmtime_wasi_http::Error::DestinationUnavailable,
                            })
                        }
                    }
                })
            }
            Via::Refused(why) => {
                self.log.note(&format!("http: outgoing request refused: {why}"));
                // The URL is the app's: debug-escaped.
                tracing::info!(app = %self.app, ?why, "outgoing http refused");
                Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
            }
        }
    }
}

#[cfg(test)]
mod tests;
