//! HTTP apps in the supervisor: an app whose component is a `wasi:http` handler "runs" by
//! being attached to the gateway; each request the gateway hands it runs in a fresh
//! instance ([`vyoma_runtime::Runtime::handle_http`]). Stopping it detaches it and drains
//! its requests in flight; killing it also cancels them. Requests one app makes to another
//! by name ([`Chain`]) pass the same two-sided grants as IPC messages: the caller's
//! `[capabilities.http] outbound` (checked by the runtime) and the target's
//! `[capabilities.ipc] accept` (checked here).

use std::sync::{Arc, Weak};

use futures::future::BoxFuture;
use http::StatusCode;
use tokio_util::sync::CancellationToken;
use vyoma_http::{Body, Failure, Handler, Ticket, Unreachable};
use vyoma_ipc::Endpoint;
use vyoma_lifecycle::ExitReason;
use vyoma_manifest::Peers;
use vyoma_runtime::{ChainError, HandleError, HttpApp, HttpChain, Runtime, StopRequest};

use crate::{Inner, Supervisor};

/// One running HTTP app, as the gateway sees it.
struct AppHandler {
    runtime: Arc<Runtime>,
    app: HttpApp,
    ipc: Endpoint,
    /// Cancelled when the app is killed: its requests in flight end at once.
    killed: CancellationToken,
}

impl Handler for AppHandler {
    fn handle(
        &self,
        req: http::Request<Body>,
        ticket: Ticket,
    ) -> BoxFuture<'static, Result<http::Response<Body>, Failure>> {
        let runtime = self.runtime.clone();
        let app = self.app.clone();
        let ipc = self.ipc.share();
        let killed = self.killed.clone().cancelled_owned();
        Box::pin(async move {
            runtime
                .handle_http(&app, ipc, req, killed, move |_| drop(ticket))
                .await
                .map_err(failure)
        })
    }
}

fn failure(e: HandleError) -> Failure {
    let status = match &e {
        HandleError::Overloaded(_) | HandleError::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
        HandleError::BadRequest(_) => StatusCode::BAD_REQUEST,
        HandleError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        HandleError::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
    };
    Failure {
        status,
        message: e.to_string(),
    }
}

/// Cancels an HTTP app's requests and detaches it when its instance task ends or is
/// dropped (killed), so a killed app never keeps serving.
struct Attached {
    gateway: vyoma_http::Gateway,
    name: String,
    handler: Arc<dyn Handler>,
    killed: CancellationToken,
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.killed.cancel();
        self.gateway.release(&self.name, &self.handler);
    }
}

impl Supervisor {
    /// Serves an HTTP app until it is asked to stop: attached to the gateway (`running`),
    /// then detached, its requests in flight drained (the stop timeout bounds this: past
    /// it, the instance is killed and they are cancelled).
    pub(crate) async fn serve_http(
        &self,
        name: &str,
        generation: u64,
        app: HttpApp,
        ipc: Endpoint,
        stop: StopRequest,
    ) -> ExitReason {
        let killed = CancellationToken::new();
        let manifest = app.manifest.clone();
        let handler: Arc<dyn Handler> = Arc::new(AppHandler {
            runtime: self.inner.runtime.clone(),
            app,
            ipc,
            killed: killed.clone(),
        });
        let _attached = Attached {
            gateway: self.inner.gateway.clone(),
            name: name.to_string(),
            handler: handler.clone(),
            killed,
        };
        self.inner.gateway.attach(&manifest, handler);
        {
            let _supervisor = crate::SupervisorCode::enter();
            let _ = self.apply(name, vyoma_lifecycle::Event::Running { generation });
        }
        stop.requested().await;
        let left = self.inner.gateway.detach(name, manifest.lifecycle.stop).await;
        if left > 0 {
            return ExitReason::Error(format!(
                "{left} request(s) still running at the stop timeout: cancelled"
            ));
        }
        ExitReason::Code(0)
    }

    /// The HTTP gateway: routes to the apps of this supervisor. Give it a listener with
    /// [`vyoma_http::Gateway::listen`].
    pub fn gateway(&self) -> &vyoma_http::Gateway {
        &self.inner.gateway
    }
}

/// Requests from one app to another by name, for the runtime.
#[derive(Debug)]
pub(crate) struct Chain(pub(crate) Weak<Inner>);

impl HttpChain for Chain {
    fn call(
        &self,
        caller: &str,
        app: &str,
        req: http::Request<Body>,
    ) -> BoxFuture<'static, Result<http::Response<Body>, ChainError>> {
        let Some(inner) = self.0.upgrade() else {
            return Box::pin(async { Err(ChainError::Unavailable("the supervisor is shutting down".into())) });
        };
        let sup = Supervisor { inner };
        let accepts = sup
            .registry()
            .get(app)
            .map(|e| match &e.manifest.capabilities.ipc.accept {
                Peers::Any(_) => true,
                Peers::Only(names) => names.iter().any(|n| n.value == caller),
            });
        let (caller, app) = (caller.to_string(), app.to_string());
        Box::pin(async move {
            match accepts {
                None => return Err(ChainError::NotFound(format!("no app `{app}`"))),
                Some(false) => {
                    return Err(ChainError::Denied(format!(
                        "app `{app}` does not accept requests from `{caller}`: add \"{caller}\" to its [capabilities.ipc] accept"
                    )));
                }
                Some(true) => {}
            }
            sup.inner.gateway.call(&app, req).await.map_err(|e| match e {
                Unreachable::NotFound(_) => ChainError::NotFound(format!("app `{app}` is not an HTTP app")),
                Unreachable::Unavailable(why) => ChainError::Unavailable(why),
            })
        })
    }
}
