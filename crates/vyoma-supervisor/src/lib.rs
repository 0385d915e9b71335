//! The VyomaOS supervisor: the registry of apps, the driver that carries out their
//! lifecycles, the IPC broker they share (one per boot; each instance gets its app's
//! endpoint), and the operator console's commands (including `@app: text`). The same code
//! runs hosted (`vyoma run`) and as PID 1 in the image (`vyoma-init`).
//!
//! How a request flows: an operator line (or boot) becomes a [`console::Command`]; the
//! command becomes a lifecycle [`Event`] for one app; [`Supervisor::apply`] feeds it to the
//! app's pure [`Lifecycle`] under the registry lock and performs the [`Action`]s it returns
//! (spawn an instance task, abort one, arm a backoff timer). Instance tasks report back
//! through `apply` too (`Running`, `Exited`), so every state change goes through one place.
//! The lock is never held across an `.await`.
//!
//! Not here: Wasmtime details (`vyoma-runtime`), restart arithmetic (`vyoma-lifecycle`),
//! terminal handling and process setup (`vyoma-cli`).

mod boot;
pub mod console;

pub use boot::{BootError, BootTimings, Booted, app_problems, boot, boot_selected};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use futures::FutureExt;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use vyoma_ipc::{AppSpec, Broker, Counters, Grants, InboxLimits};
use vyoma_lifecycle::{Action, AppState, Event, ExitReason, Lifecycle, TransitionError};
use vyoma_manifest::{AppSet, Manifest};
use vyoma_runtime::{AppLog, Loaded, Runtime};

tokio::task_local! {
    /// Set while an app instance's future is being polled.
    static IN_APP_INSTANCE: ();
}

/// Whether the calling code runs inside an app instance (a Wasmtime call or a host function
/// of some app). A panic there ends only that instance, so a panic hook can tell it from a
/// panic in the supervisor itself.
pub fn in_app_instance() -> bool {
    IN_APP_INSTANCE.try_with(|_| ()).is_ok()
}

/// A source of monotonic time, as a duration since some fixed origin.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> Duration;
}

/// The real monotonic clock.
#[derive(Debug)]
pub struct RealClock(Instant);

impl Default for RealClock {
    fn default() -> Self {
        RealClock(Instant::now())
    }
}

impl Clock for RealClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
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
}

/// One app in the registry.
struct Entry {
    manifest: Arc<Manifest>,
    lifecycle: Lifecycle,
    log: Arc<AppLog>,
    memory: Arc<AtomicU64>,
    component: Option<Component>,
    task: Option<AbortHandle>,
}

/// A loaded component and the file identity it was loaded from, so an unchanged file is
/// not read again on restart while a replaced one (hot update) is picked up.
#[derive(Clone)]
struct Component {
    loaded: Arc<Loaded>,
    stamp: FileStamp,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

fn stamp(path: &std::path::Path) -> Option<FileStamp> {
    std::fs::metadata(path).ok().map(|m| FileStamp {
        modified: m.modified().ok(),
        len: m.len(),
    })
}

/// A row of `ps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppStatus {
    /// App name.
    pub name: String,
    /// Lifecycle state.
    pub state: AppState,
    /// Restarts since boot.
    pub restarts: u32,
    /// Time in the running state, when running.
    pub uptime: Option<Duration>,
    /// Linear memory in use, when an instance exists.
    pub memory: Option<u64>,
    /// Why the last instance ended.
    pub last_exit: Option<ExitReason>,
    /// IPC counters: sent, received, refused, queued.
    pub ipc: Counters,
}

/// Everything `inspect` shows of one app.
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
    /// Log usage: lines dropped, bytes held, capacity.
    pub log_usage: (u64, usize, usize),
}

/// The apps, and how many are in each state (so waiting for "all running" is O(1) per
/// change rather than a scan of every app).
struct Registry {
    apps: BTreeMap<String, Entry>,
    counts: [usize; STATES],
}

/// Number of [`AppState`] variants.
const STATES: usize = 6;

impl std::ops::Deref for Registry {
    type Target = BTreeMap<String, Entry>;
    fn deref(&self) -> &Self::Target {
        &self.apps
    }
}

impl std::ops::DerefMut for Registry {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.apps
    }
}

struct Inner {
    runtime: Arc<Runtime>,
    /// Every app's inbox; outlives instances.
    broker: Arc<Broker>,
    clock: Arc<dyn Clock>,
    apps: Mutex<Registry>,
    /// App names in start order (dependencies first).
    order: Vec<String>,
    /// Bumped on every state change; `wait` and start ordering watch it.
    changed: watch::Sender<u64>,
}

/// A cheap, cloneable handle to the supervisor.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("apps", &self.inner.order)
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// A supervisor for `apps`, not yet started.
    pub fn new(runtime: Arc<Runtime>, apps: AppSet, clock: Arc<dyn Clock>) -> Supervisor {
        let now = clock.now();
        let broker = Broker::new(apps.apps().iter().map(ipc_spec), InboxLimits::default());
        let mut map = BTreeMap::new();
        let mut order = Vec::new();
        for m in apps.into_apps() {
            order.push(m.name.clone());
            map.insert(
                m.name.clone(),
                Entry {
                    lifecycle: Lifecycle::new(m.restart, now),
                    log: AppLog::new(m.limits.log_buffer),
                    memory: Arc::new(AtomicU64::new(0)),
                    manifest: Arc::new(m),
                    component: None,
                    task: None,
                },
            );
        }
        Supervisor {
            inner: Arc::new(Inner {
                runtime,
                broker,
                clock,
                apps: Mutex::new(Registry {
                    counts: {
                        let mut c = [0; STATES];
                        c[AppState::Stopped as usize] = map.len();
                        c
                    },
                    apps: map,
                }),
                order,
                changed: watch::Sender::new(0),
            }),
        }
    }

    fn apps(&self) -> MutexGuard<'_, Registry> {
        // State transitions are applied whole under the lock and never panic midway, so a
        // poisoned lock (a panic elsewhere while holding it) still guards consistent data.
        self.inner.apps.lock().unwrap_or_else(|p| p.into_inner())
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
    pub fn names(&self) -> &[String] {
        &self.inner.order
    }

    /// Loads every app's component (each distinct file once, in parallel on the blocking
    /// pool), so starting is instantiation only. Apps whose component fails to load are
    /// reported in their log and left to fail when started; the others are unaffected.
    pub async fn preload(&self) -> Vec<(String, String)> {
        let mut by_path: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
        for (name, e) in self.apps().iter() {
            by_path
                .entry(e.manifest.component.value.clone())
                .or_default()
                .push(name.clone());
        }
        let mut jobs = Vec::new();
        for (path, names) in by_path {
            let rt = self.inner.runtime.clone();
            jobs.push(tokio::task::spawn_blocking(move || {
                let st = stamp(&path);
                (rt.load(&path), st, names)
            }));
        }
        let mut failures = Vec::new();
        for j in jobs {
            let (result, st, names) = match j.await {
                Ok(r) => r,
                Err(e) => {
                    // Those apps load again when started, and report the error then.
                    tracing::error!(error = %e, "component loader task failed");
                    continue;
                }
            };
            let mut apps = self.apps();
            match result {
                Ok(loaded) => {
                    for n in names {
                        if let (Some(e), Some(st)) = (apps.get_mut(&n), st) {
                            e.component = Some(Component {
                                loaded: loaded.clone(),
                                stamp: st,
                            });
                        }
                    }
                }
                Err(err) => {
                    let msg = err.to_string();
                    for n in names {
                        if let Some(e) = apps.get(&n) {
                            e.log.note(&msg);
                        }
                        failures.push((n, msg.clone()));
                    }
                }
            }
        }
        failures
    }

    /// Starts every app in dependency order: an app is started once each app it depends on
    /// has started (is running or has ended), like systemd's `After=`.
    pub async fn start_all(&self) {
        let order = self.inner.order.clone();
        self.start_in_order(&order).await;
    }

    /// Starts the apps in `names` and every app they depend on, in dependency order; the
    /// others stay stopped. Returns the names that are not apps.
    pub async fn start_only(&self, names: &[String]) -> Vec<String> {
        let unknown: Vec<String> = names
            .iter()
            .filter(|n| !self.apps().contains_key(n.as_str()))
            .cloned()
            .collect();
        let mut wanted: std::collections::BTreeSet<String> =
            names.iter().filter(|n| !unknown.contains(n)).cloned().collect();
        let mut todo: Vec<String> = wanted.iter().cloned().collect();
        while let Some(n) = todo.pop() {
            let deps: Vec<String> = self
                .apps()
                .get(&n)
                .map(|e| e.manifest.depends_on.iter().map(|d| d.value.clone()).collect())
                .unwrap_or_default();
            for d in deps {
                if wanted.insert(d.clone()) {
                    todo.push(d);
                }
            }
        }
        let order: Vec<String> = self
            .inner
            .order
            .iter()
            .filter(|n| wanted.contains(*n))
            .cloned()
            .collect();
        self.start_in_order(&order).await;
        unknown
    }

    /// Waits until no app is still starting (each has reached running, or ended), or
    /// `timeout` passes. Returns whether it got there.
    pub async fn wait_settled(&self, timeout: Duration) -> bool {
        let fut = self.wait_until(|apps| apps.counts[AppState::Starting as usize] == 0);
        tokio::time::timeout(timeout, fut).await.is_ok()
    }

    async fn start_in_order(&self, order: &[String]) {
        for name in order {
            let deps: Vec<String> = match self.apps().get(name) {
                Some(e) => e.manifest.depends_on.iter().map(|d| d.value.clone()).collect(),
                None => continue,
            };
            for d in &deps {
                self.wait_until(|s| s.get(d).is_none_or(|e| e.lifecycle.state() != AppState::Starting))
                    .await;
            }
            if let Err(e) = self.apply(name, Event::Start) {
                tracing::debug!(app = %name, error = %e, "not started at boot");
            }
        }
    }

    /// Waits until `pred` holds for the registry.
    async fn wait_until(&self, pred: impl Fn(&Registry) -> bool) {
        let mut rx = self.inner.changed.subscribe();
        loop {
            if pred(&self.apps()) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Waits until `app` (or, for `all`, every app) is in `state`, or `timeout` passes.
    /// Returns whether it got there.
    pub async fn wait_for(&self, app: &str, state: AppState, timeout: Duration) -> Result<bool, SupervisorError> {
        if app != "all" && !self.apps().contains_key(app) {
            return Err(SupervisorError::UnknownApp(app.to_string()));
        }
        let fut = self.wait_until(|apps| {
            if app == "all" {
                apps.counts[state as usize] == apps.len()
            } else {
                apps.get(app).is_some_and(|e| e.lifecycle.state() == state)
            }
        });
        Ok(tokio::time::timeout(timeout, fut).await.is_ok())
    }

    /// Feeds `event` to app `name`'s lifecycle and carries out what it asks for.
    pub fn apply(&self, name: &str, event: Event) -> Result<(), SupervisorError> {
        let now = self.inner.clock.now();
        let mut registry = self.apps();
        let Registry { apps, counts } = &mut *registry;
        let total = apps.len();
        let entry = apps
            .get_mut(name)
            .ok_or_else(|| SupervisorError::UnknownApp(name.to_string()))?;
        let what = match event {
            Event::Start => "start",
            Event::Kill => "kill",
            _ => "restart",
        };
        let before = entry.lifecycle.state();
        // Only an exit the state machine will accept is reported: a late exit from an
        // instance that was killed or replaced meanwhile is not news.
        let live = matches!(before, AppState::Starting | AppState::Running);
        let exit_note = match &event {
            Event::Exited { generation, reason } if live && *generation == entry.lifecycle.generation() => {
                Some(reason.to_string())
            }
            _ => None,
        };
        let actions = entry
            .lifecycle
            .handle(now, event)
            .map_err(|source| SupervisorError::Transition {
                action: what,
                app: name.to_string(),
                source,
            })?;
        if let Some(reason) = exit_note {
            entry.task = None;
            entry.memory.store(0, Ordering::Relaxed);
            entry.log.note(&format!("exited: {reason}"));
            tracing::info!(app = %name, %reason, "app exited");
        }
        for action in actions {
            match action {
                Action::Spawn { generation } => self.spawn(name, entry, generation),
                Action::Abort => {
                    if let Some(t) = entry.task.take() {
                        t.abort();
                    }
                    // The aborted instance will not flush its own partial line.
                    entry.log.flush();
                    entry.memory.store(0, Ordering::Relaxed);
                    entry.log.note("killed by operator");
                    tracing::info!(app = %name, "app killed");
                }
                Action::ScheduleRestart { delay, generation } => {
                    entry
                        .log
                        .note(&format!("restarting in {}", humantime::format_duration(delay)));
                    let sup = self.clone();
                    let name = name.to_string();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = sup.apply(&name, Event::BackoffElapsed { generation });
                    });
                }
            }
        }
        let after = entry.lifecycle.state();
        if after != before {
            counts[before as usize] -= 1;
            counts[after as usize] += 1;
        }
        debug_assert_eq!(counts.iter().sum::<usize>(), total);
        if after == AppState::Running && before != AppState::Running {
            entry
                .log
                .note(&format!("running (instance {})", entry.lifecycle.generation()));
        }
        if after == AppState::Failed && before != AppState::Failed {
            entry.log.note("failed: not restarting (restart policy)");
            tracing::warn!(app = %name, "app failed and will not be restarted");
        }
        drop(registry);
        self.inner.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Spawns instance `generation` of an app as a task that reports back via `apply`.
    fn spawn(&self, name: &str, entry: &mut Entry, generation: u64) {
        let sup = self.clone();
        let name = name.to_string();
        let manifest = entry.manifest.clone();
        let log = entry.log.clone();
        let memory = entry.memory.clone();
        let ipc = self
            .inner
            .broker
            .endpoint(&name)
            .expect("the broker has an inbox for every app in the registry");
        // Reuse the loaded component unless the file changed (hot update) or is new.
        let path = manifest.component.value.clone();
        let cached = entry
            .component
            .as_ref()
            .filter(|c| stamp(&path) == Some(c.stamp))
            .map(|c| c.loaded.clone());
        let handle = tokio::spawn(async move {
            let loaded = match cached {
                Some(l) => l,
                None => match sup.reload(&name, &path).await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = sup.apply(
                            &name,
                            Event::Exited {
                                generation,
                                reason: ExitReason::Error(e),
                            },
                        );
                        return;
                    }
                },
            };
            let run = sup.inner.runtime.run(&manifest, &loaded, &log, memory, ipc, || {
                let _ = sup.apply(&name, Event::Running { generation });
            });
            // A panic in host code is a supervisor bug, but it ends only this instance.
            let run = IN_APP_INSTANCE.scope((), run);
            let reason = match std::panic::AssertUnwindSafe(run).catch_unwind().await {
                Ok(r) => r,
                Err(p) => {
                    let msg = p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    ExitReason::Error(format!("host panic while running the app: {msg}"))
                }
            };
            let _ = sup.apply(&name, Event::Exited { generation, reason });
        });
        entry.task = Some(handle.abort_handle());
    }

    /// Loads an app's component anew (first start after a failed preload, or hot update).
    async fn reload(&self, name: &str, path: &std::path::Path) -> Result<Arc<Loaded>, String> {
        let rt = self.inner.runtime.clone();
        let p = path.to_path_buf();
        let (result, st) = tokio::task::spawn_blocking(move || {
            let st = stamp(&p);
            (rt.load(&p), st)
        })
        .await
        .map_err(|e| format!("component loader failed: {e}"))?;
        let loaded = result.map_err(|e| e.to_string())?;
        let mut apps = self.apps();
        if let (Some(e), Some(st)) = (apps.get_mut(name), st) {
            if e.component.as_ref().is_some_and(|c| c.loaded.sha256 != loaded.sha256) {
                e.log.note(&format!(
                    "loaded new component {} (sha256 {})",
                    path.display(),
                    &loaded.sha256[..12]
                ));
            }
            e.component = Some(Component {
                loaded: loaded.clone(),
                stamp: st,
            });
        }
        Ok(loaded)
    }

    /// Delivers `body` to `app` as a message from the console; its reply (if any) comes
    /// to the console's inbox. Refused when the app's component does not read IPC.
    pub fn send_from_console(&self, app: &str, body: Vec<u8>) -> Result<(), SupervisorError> {
        let reads_ipc = self
            .apps()
            .get(app)
            .ok_or_else(|| SupervisorError::UnknownApp(app.to_string()))?
            .component
            .as_ref()
            .is_none_or(|c| {
                c.loaded
                    .info
                    .imports
                    .iter()
                    .any(|i| i.starts_with(vyoma_runtime::IPC_INTERFACE))
            });
        if !reads_ipc {
            return Err(SupervisorError::NoIpc(app.to_string()));
        }
        self.inner
            .broker
            .console()
            .send_from_console(app, body)
            .map_err(|source| SupervisorError::Ipc {
                app: app.to_string(),
                source,
            })
    }

    /// One status row per app, in name order.
    pub fn status(&self) -> Vec<AppStatus> {
        let now = self.inner.clock.now();
        let broker = &self.inner.broker;
        self.apps().iter().map(|(n, e)| row(n, e, now, broker)).collect()
    }

    /// Everything known about one app.
    pub fn detail(&self, name: &str) -> Result<AppDetail, SupervisorError> {
        let now = self.inner.clock.now();
        let apps = self.apps();
        let e = apps
            .get(name)
            .ok_or_else(|| SupervisorError::UnknownApp(name.to_string()))?;
        Ok(AppDetail {
            status: row(name, e, now, &self.inner.broker),
            manifest: e.manifest.clone(),
            component: e.component.as_ref().map(|c| c.loaded.clone()),
            generation: e.lifecycle.generation(),
            log_usage: e.log.usage(),
        })
    }

    /// The app's log.
    pub fn log(&self, name: &str) -> Result<Arc<AppLog>, SupervisorError> {
        self.apps()
            .get(name)
            .map(|e| e.log.clone())
            .ok_or_else(|| SupervisorError::UnknownApp(name.to_string()))
    }

    /// Stops every app, in reverse start order (dependents before their dependencies),
    /// and waits (up to 5 s) until every instance has actually unwound.
    pub async fn shutdown(&self) {
        let mut tasks = Vec::new();
        for name in self.inner.order.iter().rev() {
            let live = match self.apps().get(name) {
                Some(e) => {
                    tasks.extend(e.task.clone());
                    e.lifecycle.state() != AppState::Stopped
                }
                None => continue,
            };
            if live {
                let _ = self.apply(name, Event::Kill);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while tasks.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
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

fn row(name: &str, e: &Entry, now: Duration, broker: &Broker) -> AppStatus {
    let state = e.lifecycle.state();
    AppStatus {
        name: name.to_string(),
        state,
        restarts: e.lifecycle.restarts(),
        uptime: (state == AppState::Running).then(|| now.saturating_sub(e.lifecycle.since())),
        memory: matches!(state, AppState::Running | AppState::Starting).then(|| e.memory.load(Ordering::Relaxed)),
        last_exit: e.lifecycle.last_exit().cloned(),
        ipc: broker.counters(name).unwrap_or_default(),
    }
}
