//! The driver: feeds lifecycle [`Event`]s to an app's pure state machine under the registry
//! lock and carries out the [`Action`]s it returns (spawn an instance task, abort one, ask
//! one to stop, arm a timer). Instance tasks and timers report back through
//! [`Supervisor::apply`] too, so every state change goes through one place.
//!
//! Everything is spawned on the apps' runtime (its handle is kept), whichever thread the
//! request came from: the console runs on a thread and runtime of its own.
//!
//! Under the lock nothing blocks: no file system access (a component's file is checked by
//! its instance task), no synchronous logging (tracing runs after the lock is released),
//! and the lock is never held across an `.await`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use futures::FutureExt;
use vyoma_lifecycle::{Action, AppState, Event, ExitReason};
use vyoma_runtime::{Loaded, StopSignal};

use crate::events::LifecycleEvent;
use crate::registry::{Component, Entry, stamp};
use crate::{IN_APP_INSTANCE, StopOutcome, Supervisor, SupervisorCode, SupervisorError};

/// What the operator asked for, in words, for error messages.
fn request_name(event: &Event) -> &'static str {
    match event {
        Event::Start => "start",
        Event::Kill => "kill",
        Event::Stop { .. } => "stop",
        Event::Restart => "restart",
        Event::Replace { .. } => "replace",
        _ => "update",
    }
}

/// Why an instance is being aborted, for the app's log.
fn abort_note(event: &Event, entry: &Entry) -> String {
    let t = entry.lifecycle().timeouts();
    match event {
        Event::Restart => "stopped for a restart".into(),
        Event::Replace { .. } => "stopped: another version takes over".into(),
        Event::StartTimedOut { .. } => format!("did not start within {}: stopped", humantime::format_duration(t.start)),
        Event::StopTimedOut { .. } => format!(
            "did not stop within {} of being asked: killed",
            humantime::format_duration(t.stop)
        ),
        _ => "killed by operator".into(),
    }
}

impl Supervisor {
    /// Feeds `event` to app `name`'s lifecycle and carries out what it asks for.
    pub fn apply(&self, name: &str, event: Event) -> Result<(), SupervisorError> {
        let now = self.inner.clock.now();
        let what = request_name(&event);
        // Only an exit the state machine will accept is reported: a late exit from an
        // instance that was killed or replaced meanwhile is not news.
        let exit = match &event {
            Event::Exited { generation, reason } => Some((*generation, reason.to_string())),
            _ => None,
        };
        let cause = event.clone();
        let mut registry = self.registry();
        // One lookup: the exit is judged against the entry as it was before the event.
        let handled = registry.handle(name, now, event, |entry| {
            exit.filter(|(g, _)| entry.state().is_live() && *g == entry.lifecycle().generation())
                .map(|(_, reason)| reason)
        });
        let (exit_note, handled, entry) = match handled {
            Some((note, Ok(h), entry)) => (note, h, entry),
            Some((_, Err(source), _)) => {
                return Err(SupervisorError::Transition {
                    action: what,
                    app: name.to_string(),
                    source,
                });
            }
            None => {
                drop(registry);
                return Err(self.not_here(name));
            }
        };
        if let Some(reason) = &exit_note {
            entry.task = None;
            entry.stop = None;
            entry.memory.store(0, Ordering::Relaxed);
            entry.log.note(&format!("exited: {reason}"));
        }
        for action in handled.actions {
            self.perform(name, entry, &cause, action);
        }
        // A failure of a version on probation is the verdict: its predecessor is put back.
        let verdict = entry.trial.as_ref().and_then(|t| {
            crate::update::verdict(t.first_generation, &cause, exit_note.is_some(), handled.before)
                .map(|why| (t.id, why))
        });
        if let Some((id, why)) = verdict {
            self.trial_failed(name, id, why);
        }
        let (before, after) = (handled.before, handled.after);
        if after == AppState::Running && before != AppState::Running {
            entry
                .log
                .note(&format!("running (instance {})", entry.lifecycle().generation()));
        }
        if after == AppState::Stopped && before == AppState::Stopping && exit_note.is_some() {
            entry.log.note("stopped as asked");
        }
        let gives_up = after == AppState::Failed && before != AppState::Failed;
        if gives_up && entry.lifecycle().policy().retry_after.is_none() {
            entry.log.note("failed: not restarting (restart policy)");
        }
        let generation = entry.lifecycle().generation();
        if after != before {
            // Under the lock, so events are numbered in the order they happened, and the
            // screen shows the new state by the time anyone hears of it.
            let (recent, intensity) = (entry.lifecycle().recent_restarts(), entry.manifest.restart.intensity);
            self.display_state(name, after, recent, intensity, true);
            self.emit(name, before, after, generation);
        }
        drop(registry);
        if after != before {
            self.inner.changed.send_modify(|n| *n += 1);
        }
        // Logging after the lock: it may block (a flow-controlled serial console).
        if let Some(reason) = exit_note {
            tracing::info!(app = %name, %reason, "app exited");
        }
        if gives_up {
            tracing::warn!(app = %name, "app failed");
        }
        Ok(())
    }

    /// Publishes a state change. Called with the registry lock held.
    fn emit(&self, name: &str, from: AppState, to: AppState, generation: u64) {
        let seq = self.inner.event_seq.fetch_add(1, Ordering::Relaxed);
        // No subscriber is not an error.
        let _ = self.inner.events.send(LifecycleEvent {
            seq,
            app: name.to_string(),
            from,
            to,
            generation,
            at: SystemTime::now(),
        });
    }

    fn perform(&self, name: &str, entry: &mut Entry, cause: &Event, action: Action) {
        match action {
            Action::Spawn { generation } => self.spawn(name, entry, generation),
            Action::Abort => {
                if let Some(t) = entry.task.take() {
                    t.abort();
                }
                entry.stop = None;
                // The aborted instance will not flush its own partial line.
                entry.log.flush();
                entry.memory.store(0, Ordering::Relaxed);
                entry.log.note(&abort_note(cause, entry));
            }
            Action::RequestStop { .. } => {
                if let Some(s) = &entry.stop {
                    s.raise();
                }
                entry.log.note(&format!(
                    "asked to stop; killed if still running in {}",
                    humantime::format_duration(entry.lifecycle().timeouts().stop)
                ));
            }
            Action::After { delay, event } => {
                if matches!(event, Event::BackoffElapsed { .. }) {
                    let verb = if entry.state() == AppState::Failed {
                        "failed: retrying in"
                    } else {
                        "restarting in"
                    };
                    entry.log.note(&format!("{verb} {}", humantime::format_duration(delay)));
                }
                entry.timers.retain(|t| !t.is_finished());
                let sup = self.clone();
                let name = name.to_string();
                let timer = self.inner.rt.spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = sup.apply(&name, event);
                });
                entry.timers.push(timer.abort_handle());
            }
        }
    }

    /// Spawns instance `generation` of an app as a task that reports back via `apply`.
    fn spawn(&self, name: &str, entry: &mut Entry, generation: u64) {
        let sup = self.clone();
        let name = name.to_string();
        let manifest = entry.manifest.clone();
        let log = entry.log.clone();
        let memory = entry.memory.clone();
        let cpu = entry.cpu.clone();
        // The instance runs in the lane its CPU use puts it in; its polls are timed into
        // the app's CPU time.
        let pacer = self.inner.runtime.pacer(entry.cpu.clone());
        entry.pacer = Some(pacer.clone());
        let ipc = self.inner.broker.endpoint(&name);
        let display = self.display_session(&name);
        let cached = entry.component.clone();
        let (signal, request) = StopSignal::new();
        entry.stop = Some(signal);
        let exited = move |sup: &Supervisor, name: &str, reason: ExitReason| {
            let _ = sup.apply(name, Event::Exited { generation, reason });
        };
        let handle = self.inner.tasks.spawn_on(
            async move {
                let Some(ipc) = ipc else {
                    let why = "the IPC broker has no inbox for this app".to_string();
                    return exited(&sup, &name, ExitReason::Error(why));
                };
                // Reuse the loaded component unless the file changed (hot update) or is new.
                let path = manifest.component.value.clone();
                let loaded = match cached.filter(|c| stamp(&path) == Some(c.stamp)) {
                    Some(c) => c.loaded,
                    None => match sup.reload(&name, &path).await {
                        Ok(l) => l,
                        Err(e) => return exited(&sup, &name, ExitReason::Error(e)),
                    },
                };
                if let Err(why) = loaded.fits(&manifest) {
                    return exited(&sup, &name, ExitReason::Error(why));
                }
                if let Some(app) = loaded.http_app(manifest.clone(), log.clone(), memory.clone(), cpu.clone()) {
                    // An HTTP handler: each request runs in an instance of its own.
                    let reason = sup.serve_http(&name, generation, app, ipc, request).await;
                    return exited(&sup, &name, reason);
                }
                // On the interactive shard of the apps it messages (both sides of a
                // grant name each other), held until the instance ends. An app on the
                // display runs where the display's clock runs, on the supervisor's
                // workers: its frame events then wake it into the clock's own worker
                // queue, and input from a device's thread, which arrives through the
                // runtime's shared queue, is taken ahead of the tick's frame work
                // (`supervisor_runtime`). On a shard both would wait in one line.
                let ipc_grant = &manifest.capabilities.ipc;
                let seat = if manifest.capabilities.display.is_some() {
                    vyoma_runtime::Seat::where_polled()
                } else {
                    sup.inner
                        .runtime
                        .lanes()
                        .place(&name, ipc_grant.send.iter_names().chain(ipc_grant.accept.iter_names()))
                };
                let instance = {
                    let (sup, name, pacer) = (sup.clone(), name.clone(), pacer.clone());
                    // Tracked where it is dropped: on a shard or in the batch lane, a
                    // killed instance's store (its memory, its pool slot) goes after this
                    // task has ended, and shutdown waits for that too.
                    let tracked = sup.inner.tasks.token();
                    async move {
                        let _tracked = tracked;
                        sup.run_instance(
                            &name, generation, &manifest, &loaded, &log, memory, ipc, request, display, &pacer,
                        )
                        .await
                    }
                };
                let reason = sup
                    .inner
                    .runtime
                    .lanes()
                    .run(pacer, &seat, instance)
                    .await
                    .unwrap_or_else(|| {
                        ExitReason::Error(
                            "the runtime under the instance (its shard or the batch lane) shut down".into(),
                        )
                    });
                exited(&sup, &name, reason);
            },
            &self.inner.rt,
        );
        entry.task = Some(handle.abort_handle());
    }

    /// Runs one instance to its end. The instance runs inside [`IN_APP_INSTANCE`] (a panic
    /// there ends only this instance); the supervisor's own work on its behalf (reporting
    /// `Running`) runs as [`SupervisorCode`], so a supervisor bug is never blamed on the app.
    #[allow(clippy::too_many_arguments, reason = "one instance's every input, each distinct")]
    async fn run_instance(
        &self,
        name: &str,
        generation: u64,
        manifest: &vyoma_manifest::Manifest,
        loaded: &Arc<Loaded>,
        log: &Arc<vyoma_runtime::AppLog>,
        memory: Arc<std::sync::atomic::AtomicU64>,
        ipc: vyoma_ipc::Endpoint,
        stop: vyoma_runtime::StopRequest,
        display: Option<vyoma_display::Session>,
        pacer: &Arc<vyoma_runtime::Pacer>,
    ) -> ExitReason {
        // `Running` is reported before the app's `run` is called, so the note is in its log
        // before anything the app prints.
        let run = self
            .inner
            .runtime
            .run(manifest, loaded, log, memory, ipc, stop, display, pacer, || {
                let _supervisor = SupervisorCode::enter();
                let _ = self.apply(name, Event::Running { generation });
            });
        let ended = std::panic::AssertUnwindSafe(IN_APP_INSTANCE.scope(std::cell::Cell::new(true), run))
            .catch_unwind()
            .await;
        match ended {
            Ok(r) => r,
            Err(p) => {
                // A panic in host code is a supervisor bug, but it ends only this instance.
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                ExitReason::Error(format!("host panic while running the app: {msg}"))
            }
        }
    }

    /// Loads an app's component anew (first start after a failed preload, or hot update).
    pub(crate) async fn reload(&self, name: &str, path: &std::path::Path) -> Result<Arc<Loaded>, String> {
        let rt = self.inner.runtime.clone();
        let p = path.to_path_buf();
        let (result, st) = self
            .inner
            .rt
            .spawn_blocking(move || {
                let st = stamp(&p);
                (rt.load(&p), st)
            })
            .await
            .map_err(|e| format!("component loader failed: {e}"))?;
        let loaded = result.map_err(|e| e.to_string())?;
        let mut apps = self.registry();
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

    /// Asks `name` to stop and stay stopped: an app that listens for stop requests
    /// (`vyoma:app/lifecycle`) gets its stop timeout to end; any other is killed at once.
    pub fn stop(&self, name: &str) -> Result<StopOutcome, SupervisorError> {
        let (graceful, live, timeout) = {
            let registry = self.registry();
            let e = registry.get(name).ok_or_else(|| self.not_here(name))?;
            (e.listens_for_stop(), e.state().is_live(), e.lifecycle().timeouts().stop)
        };
        self.apply(name, Event::Stop { graceful })?;
        Ok(if graceful && live {
            StopOutcome::Asked { timeout }
        } else {
            StopOutcome::Stopped
        })
    }
}
