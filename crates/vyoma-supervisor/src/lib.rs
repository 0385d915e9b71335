//! The VyomaOS supervisor: the registry of apps, the driver that carries out their
//! lifecycles, the IPC broker they share (one per boot; each instance gets its app's
//! endpoint), and the operator console's commands (including `@app: text`). The same code
//! runs hosted (`vyoma run`) and as PID 1 in the image (`vyoma-init`).
//!
//! How a request flows: an operator line becomes a [`console::Command`], carried out by
//! [`console::execute`] into a typed [`console::Reply`]; a command that changes an app
//! becomes a lifecycle [`vyoma_lifecycle::Event`], which [`Supervisor::apply`] feeds to the app's pure
//! [`vyoma_lifecycle::Lifecycle`] under the registry lock, performing the actions it
//! returns (spawn an instance task, abort one, ask one to stop, arm a timer). Instance
//! tasks and timers report back through `apply` too, so every state change goes through
//! one place, and each is published as a [`LifecycleEvent`].
//!
//! The modules: [`registry`](crate::registry) (apps and per-state counts), `driver`
//! (apply), `order` (start and stop in dependency order, waits), `component` (preload),
//! `boot` (from a folder to a running set), [`console`] (commands, replies, rendering, the
//! session loop).
//!
//! Not here: Wasmtime details (`vyoma-runtime`), restart arithmetic (`vyoma-lifecycle`),
//! terminal handling and process setup (`vyoma-cli`, `vyoma-init`).

mod boot;
mod clock;
mod component;
pub mod console;
mod display;
mod driver;
mod events;
mod http;
mod order;
mod registry;
mod update;

pub use boot::{
    BootError, BootTimings, Booted, app_problems, boot, boot_nothing, boot_selected, memory_images, prepare,
};
pub use clock::{Clock, RealClock};
pub use display::DisplayRequestError;
pub use events::LifecycleEvent;
pub use update::UpdateError;
pub use vyoma_runtime::AppLog;
pub use vyoma_store;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio_util::task::TaskTracker;
use vyoma_ipc::{AppSpec, Broker, Counters, Grants, InboxLimits};
use vyoma_lifecycle::{AppState, ExitReason, TransitionError};
use vyoma_manifest::{AppSet, Diagnostics, Manifest, PartialSet, Rejected};
use vyoma_runtime::{Loaded, Runtime};

use crate::registry::{Entry, Registry};

tokio::task_local! {
    /// Set while an app instance's future is being polled: `true` while app code (Wasmtime
    /// or a host function of the app's) runs, `false` while the supervisor's own code runs
    /// on the instance's behalf (see [`SupervisorCode`]).
    static IN_APP_INSTANCE: std::cell::Cell<bool>;
}

/// Whether the calling code runs inside an app instance (a Wasmtime call or a host function
/// of some app). A panic there ends only that instance, so a panic hook can tell it from a
/// panic in the supervisor itself.
pub fn in_app_instance() -> bool {
    IN_APP_INSTANCE.try_with(std::cell::Cell::get).unwrap_or(false)
}

/// While alive, code on an instance's task counts as the supervisor's own (a panic in it
/// is a supervisor panic, not the app's).
struct SupervisorCode(bool);

impl SupervisorCode {
    fn enter() -> SupervisorCode {
        SupervisorCode(IN_APP_INSTANCE.try_with(|c| c.replace(false)).unwrap_or(false))
    }
}

impl Drop for SupervisorCode {
    fn drop(&mut self) {
        let _ = IN_APP_INSTANCE.try_with(|c| c.set(self.0));
    }
}

/// Errors from operator requests.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// No app has that name.
    #[error("no app named `{0}`; `ps` lists the apps")]
    UnknownApp(String),
    /// The app's component does not import `vyoma:app/ipc`, so nothing would read the
    /// message.
    #[error(
        "`{0}` does not read IPC messages: its component does not import `vyoma:app/ipc` (build it with the vyoma SDK, see docs/ipc.md)"
    )]
    NoIpc(String),
    /// The broker refused the message.
    #[error("message to `{app}` not delivered: {source}")]
    Ipc {
        /// The receiver.
        app: String,
        /// Why.
        source: vyoma_ipc::IpcError,
    },
    /// The app cannot run: its manifest is invalid, or it depends on an app that is.
    #[error("`{app}` cannot run:\n{problems}")]
    Invalid {
        /// The app.
        app: String,
        /// Every problem, with file, line and column.
        problems: Arc<Diagnostics>,
    },
    /// `wait` gave up.
    #[error(
        "timed out after {} waiting for {app} to be {state} ({})",
        humantime::format_duration(*timeout),
        where_they_are(elsewhere)
    )]
    WaitTimedOut {
        /// The app, or `all`.
        app: String,
        /// The state waited for.
        state: AppState,
        /// How long it waited.
        timeout: Duration,
        /// The apps not in that state, and theirs.
        elsewhere: Arc<Vec<(String, AppState)>>,
    },
    /// An update, rollback or upload was refused; the running version is untouched.
    #[error(transparent)]
    Update(Box<UpdateError>),
    /// The request does not fit the app's state.
    #[error("cannot {action} `{app}`: {source}")]
    Transition {
        /// The request (`start`, `kill`).
        action: &'static str,
        /// The app.
        app: String,
        /// Why not.
        source: TransitionError,
    },
    /// The display refused the request.
    #[error(transparent)]
    Display(#[from] display::DisplayRequestError),
}

/// "a is x, b is y" for the first few apps of a timed-out `wait`.
fn where_they_are(apps: &[(String, AppState)]) -> String {
    let mut parts: Vec<String> = apps.iter().take(5).map(|(n, s)| format!("{n} is {s}")).collect();
    if apps.len() > 5 {
        parts.push(format!("{} more", apps.len() - 5));
    }
    parts.join(", ")
}

pub use vyoma_control::{AppStatus, LogUsage, StopOutcome};

/// Everything `inspect` shows of one app, with the live objects behind it (the console and
/// the API send [`AppDetail::report`]).
#[derive(Debug, Clone)]
pub struct AppDetail {
    /// Its `ps` row.
    pub status: AppStatus,
    /// Its manifest.
    pub manifest: Arc<Manifest>,
    /// The loaded component, if it was loaded.
    pub component: Option<Arc<Loaded>>,
    /// The instance generation.
    pub generation: u64,
    /// How full its log is.
    pub log_usage: LogUsage,
    /// The CPU lane its live instance runs in, if it has one.
    pub lane: Option<vyoma_runtime::Lane>,
}

impl AppDetail {
    /// The plain report of it: what `inspect` prints, and the API's JSON.
    pub fn report(&self) -> vyoma_control::AppReport {
        let component = self.component.as_ref().map(|c| vyoma_control::ComponentReport {
            path: c.path.display().to_string(),
            size: c.size,
            sha256: c.sha256.clone(),
            source: match c.outcome {
                vyoma_runtime::CacheOutcome::Disk => vyoma_control::ComponentSource::CompileCache,
                vyoma_runtime::CacheOutcome::Compiled => vyoma_control::ComponentSource::Compiled,
                vyoma_runtime::CacheOutcome::Image => vyoma_control::ComponentSource::Image,
            },
            adapted: c.adapted,
            imports: c.info.imports.clone(),
            exports: c.info.exports.clone(),
        });
        let lane = self.lane.map(|l| match l {
            vyoma_runtime::Lane::Interactive => vyoma_control::Lane::Interactive,
            vyoma_runtime::Lane::Batch => vyoma_control::Lane::Batch,
        });
        vyoma_control::AppReport::new(
            &self.manifest,
            self.status.clone(),
            component,
            self.generation,
            self.log_usage,
            lane,
        )
    }
}

/// An app that cannot run: shown as failed, its problems in its log.
struct Invalid {
    rejected: Rejected,
    log: Arc<AppLog>,
}

struct Inner {
    runtime: Arc<Runtime>,
    /// Apps that cannot run, by name (a deploy or a remove may take one away).
    invalid: Mutex<BTreeMap<String, Invalid>>,
    /// Every app's inbox; outlives instances.
    broker: Arc<Broker>,
    clock: Arc<dyn Clock>,
    apps: Mutex<Registry>,
    /// App names in start order (dependencies first); a deployed app comes after the apps
    /// it depends on, which are there before it.
    order: Mutex<Vec<String>>,
    /// Bumped on every state change; `wait` and start ordering watch it.
    changed: watch::Sender<u64>,
    /// Every state change, in order.
    events: broadcast::Sender<LifecycleEvent>,
    /// The next event's number.
    event_seq: AtomicU64,
    /// Every instance task, so shutdown can wait for them all to end.
    tasks: TaskTracker,
    /// The runtime the apps run on (the console may call from another).
    rt: tokio::runtime::Handle,
    /// The HTTP gateway's routes and apps (its listener is the front end's).
    gateway: vyoma_http::Gateway,
    /// The app store, once opened ([`Supervisor::open_store`]).
    store: update::StoreSlot,
    /// Updates and rollbacks, one at a time.
    updating: tokio::sync::Mutex<()>,
    /// Set once shutdown has stopped the apps: no update, rollback or probation acts.
    closing: std::sync::atomic::AtomicBool,
    /// The screen, once the front end gives one ([`Supervisor::show_on`]).
    display: std::sync::OnceLock<Arc<vyoma_display::Display>>,
}

/// A cheap, cloneable handle to the supervisor.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("apps", &self.names())
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// A supervisor for `apps`, not yet started (see [`Supervisor::with_rejected`]).
    pub fn new(runtime: Arc<Runtime>, apps: AppSet, clock: Arc<dyn Clock>) -> Supervisor {
        let partial = AppSet::partial(apps.into_apps());
        Supervisor::with_rejected(runtime, partial, clock)
    }

    /// A supervisor for the apps that can run, which also shows those that cannot (as
    /// failed, with their problems in their logs), not yet started. Call it on the Tokio
    /// runtime the apps are to run on: instances, timers and loaders are spawned there,
    /// whichever thread a later request comes from.
    pub fn with_rejected(runtime: Arc<Runtime>, partial: PartialSet, clock: Arc<dyn Clock>) -> Supervisor {
        // Grants the runtime refuses (folders holding machine code) make an app unable to
        // run, like an invalid manifest.
        let partial = partial.reject_where(|m| runtime.grant_problems(m));
        let PartialSet {
            set: apps, rejected, ..
        } = partial;
        let invalid = rejected
            .into_iter()
            .map(|r| {
                let log = AppLog::new(16 << 10);
                log.note(&format!(
                    "cannot run: {} problem(s) with its manifest or its place in the set",
                    r.problems.len()
                ));
                for d in r.problems.iter() {
                    log.note(&d.to_string());
                }
                (r.name.clone(), Invalid { rejected: r, log })
            })
            .collect();
        let now = clock.now();
        // Messages waiting in inboxes are charged to the apps' shared memory budget.
        let broker = Broker::charging(
            apps.apps().iter().map(ipc_spec),
            InboxLimits::default(),
            runtime.memory_budget().clone(),
        );
        let gateway = vyoma_http::Gateway::new(vyoma_http::Router::from_manifests(apps.apps()));
        let mut map = BTreeMap::new();
        let mut order = Vec::new();
        for m in apps.into_apps() {
            order.push(m.name.clone());
            map.insert(m.name.clone(), Entry::new(m, now));
        }
        let sup = Supervisor {
            inner: Arc::new(Inner {
                runtime,
                invalid: Mutex::new(invalid),
                broker,
                clock,
                apps: Mutex::new(Registry::new(map)),
                order: Mutex::new(order),
                changed: watch::Sender::new(0),
                events: broadcast::Sender::new(events::EVENT_BACKLOG),
                event_seq: AtomicU64::new(0),
                tasks: TaskTracker::new(),
                rt: tokio::runtime::Handle::current(),
                gateway,
                store: Default::default(),
                updating: tokio::sync::Mutex::new(()),
                closing: std::sync::atomic::AtomicBool::new(false),
                display: std::sync::OnceLock::new(),
            }),
        };
        sup.inner
            .runtime
            .set_http_chain(Arc::new(http::Chain(Arc::downgrade(&sup.inner))));
        sup
    }

    /// Every state change from now on, in the order they happened (see
    /// [`LifecycleEvent::seq`]).
    pub fn events(&self) -> broadcast::Receiver<LifecycleEvent> {
        self.inner.events.subscribe()
    }

    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        // State transitions are applied whole under the lock (counts are updated together
        // with the state), so a poisoned lock (a panic elsewhere while holding it) still
        // guards consistent data.
        self.inner.apps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The apps that cannot run, with why.
    pub fn rejected(&self) -> Vec<Rejected> {
        self.invalid().values().map(|i| i.rejected.clone()).collect()
    }

    fn invalid(&self) -> MutexGuard<'_, BTreeMap<String, Invalid>> {
        // Entries are inserted and removed whole.
        self.inner.invalid.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn order(&self) -> MutexGuard<'_, Vec<String>> {
        self.inner.order.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The error for a name that is not in the registry: the app cannot run, or there is
    /// no such app.
    fn not_here(&self, name: &str) -> SupervisorError {
        match self.invalid().get(name) {
            Some(i) => SupervisorError::Invalid {
                app: name.to_string(),
                problems: Arc::new(i.rejected.problems.clone()),
            },
            None => SupervisorError::UnknownApp(name.to_string()),
        }
    }

    /// The runtime.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.inner.runtime
    }

    /// The IPC broker (every app's inbox, and the console's).
    pub fn broker(&self) -> &Arc<Broker> {
        &self.inner.broker
    }

    /// App names in start order.
    pub fn names(&self) -> Vec<String> {
        self.order().clone()
    }

    /// Delivers `body` to `app` as a message from the console; its reply (if any) comes
    /// to the console's inbox. Refused when the app's component does not read IPC.
    pub fn send_from_console(&self, app: &str, body: Vec<u8>) -> Result<(), SupervisorError> {
        self.check_reads_ipc(app)?;
        self.inner
            .broker
            .console()
            .send_from_console(app, body)
            .map_err(|source| SupervisorError::Ipc {
                app: app.to_string(),
                source,
            })
    }

    /// Delivers `body` to `app` as a request from the console and waits up to `wait` for
    /// the answer (`None`: delivered, no answer in time). Refused like
    /// [`Supervisor::send_from_console`].
    pub async fn request_from_console(
        &self,
        app: &str,
        body: Vec<u8>,
        wait: Duration,
    ) -> Result<Option<Vec<u8>>, SupervisorError> {
        self.check_reads_ipc(app)?;
        match self.inner.broker.console().request(app, body, wait).await {
            Ok(answer) => Ok(Some(answer)),
            Err(vyoma_ipc::IpcError::Timeout) => Ok(None),
            Err(source) => Err(SupervisorError::Ipc {
                app: app.to_string(),
                source,
            }),
        }
    }

    /// Refuses a message to an app whose component does not read IPC.
    fn check_reads_ipc(&self, app: &str) -> Result<(), SupervisorError> {
        let reads_ipc = self
            .registry()
            .get(app)
            .ok_or_else(|| self.not_here(app))?
            .may_import(vyoma_runtime::IPC_INTERFACE);
        if reads_ipc {
            Ok(())
        } else {
            Err(SupervisorError::NoIpc(app.to_string()))
        }
    }

    /// One status row per app, in name order, including the apps that cannot run (as
    /// failed, their first problem as the last exit).
    pub fn status(&self) -> Vec<AppStatus> {
        let now = self.inner.clock.now();
        let broker = &self.inner.broker;
        let gateway = &self.inner.gateway;
        let mut rows: Vec<AppStatus> = self
            .registry()
            .iter()
            .map(|(n, e)| row(n, e, now, broker, gateway))
            .collect();
        let invalid = self.invalid();
        if !invalid.is_empty() {
            rows.extend(invalid.iter().map(|(n, i)| AppStatus {
                name: n.clone(),
                state: AppState::Failed,
                restarts: 0,
                uptime: None,
                memory: None,
                cpu: Duration::ZERO,
                last_exit: Some(ExitReason::Error(format!(
                    "cannot run: {}",
                    i.rejected.problems.iter().next().map_or(String::new(), |d| d.message.clone())
                ))),
                ipc: Counters::default(),
                http: None,
            }));
            rows.sort_by(|a, b| a.name.cmp(&b.name));
        }
        rows
    }

    /// The required apps ([`vyoma_manifest::Timeouts::required`]) that keep the instance from
    /// being ready: those not running and not done (exited with code 0), with their
    /// states. Apps that cannot run are required and failed. Empty: ready (once start-up
    /// is over; the caller knows when that is).
    pub fn not_ready(&self) -> Vec<(String, AppState)> {
        let mut out: Vec<(String, AppState)> = self
            .registry()
            .iter()
            .filter(|(_, e)| e.manifest.lifecycle.required)
            .filter(|(_, e)| {
                let state = e.state();
                let done = state == AppState::Exited && e.lifecycle().last_exit() == Some(&ExitReason::Code(0));
                state != AppState::Running && !done
            })
            .map(|(n, e)| (n.to_string(), e.state()))
            .collect();
        out.extend(self.invalid().keys().map(|n| (n.clone(), AppState::Failed)));
        out
    }

    /// Everything known about one app.
    pub fn detail(&self, name: &str) -> Result<AppDetail, SupervisorError> {
        let now = self.inner.clock.now();
        let apps = self.registry();
        let e = apps.get(name).ok_or_else(|| self.not_here(name))?;
        Ok(AppDetail {
            status: row(name, e, now, &self.inner.broker, &self.inner.gateway),
            manifest: e.manifest.clone(),
            component: e.component.as_ref().map(|c| c.loaded.clone()),
            generation: e.lifecycle().generation(),
            lane: e.pacer.as_ref().filter(|_| e.state().is_live()).map(|p| p.lane()),
            log_usage: {
                let (dropped, held, capacity) = e.log.usage();
                LogUsage {
                    dropped,
                    held: held as u64,
                    capacity: capacity as u64,
                }
            },
        })
    }

    /// The app's log.
    pub fn log(&self, name: &str) -> Result<Arc<AppLog>, SupervisorError> {
        if let Some(i) = self.invalid().get(name) {
            return Ok(i.log.clone());
        }
        self.registry()
            .get(name)
            .map(|e| e.log.clone())
            .ok_or_else(|| SupervisorError::UnknownApp(name.to_string()))
    }
}

/// What the broker needs to know of an app: its grants and inbox bounds.
pub fn ipc_spec(m: &Manifest) -> AppSpec {
    fn peers(p: &vyoma_manifest::Peers) -> vyoma_ipc::Peers {
        match p {
            vyoma_manifest::Peers::Any(_) => vyoma_ipc::Peers::Any,
            vyoma_manifest::Peers::Only(v) if v.is_empty() => vyoma_ipc::Peers::None,
            vyoma_manifest::Peers::Only(_) => vyoma_ipc::Peers::Only(p.iter_names().map(String::from).collect()),
        }
    }
    let g = &m.capabilities.ipc;
    AppSpec {
        name: m.name.clone(),
        grants: Grants {
            send: peers(&g.send),
            accept: peers(&g.accept),
        },
        limits: InboxLimits {
            messages: m.limits.inbox,
            bytes: m.limits.inbox_bytes,
            message: m.limits.message_size,
        },
    }
}

fn row(name: &str, e: &Entry, now: Duration, broker: &Broker, gateway: &vyoma_http::Gateway) -> AppStatus {
    let state = e.state();
    let l = e.lifecycle();
    AppStatus {
        name: name.to_string(),
        state,
        restarts: l.restarts(),
        uptime: (state == AppState::Running).then(|| now.saturating_sub(l.since())),
        memory: state.is_live().then(|| e.memory.load(Ordering::Relaxed)),
        cpu: Duration::from_nanos(e.cpu.load(Ordering::Relaxed)),
        last_exit: l.last_exit().cloned(),
        ipc: broker.counters(name).unwrap_or_default(),
        http: e.is_http().then(|| {
            let c = gateway.counts(name).unwrap_or_default();
            vyoma_control::HttpStatus {
                requests: c.requests,
                errors: c.errors,
                rejected: c.rejected,
                in_flight: c.in_flight,
            }
        }),
    }
}
