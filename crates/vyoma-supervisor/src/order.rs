//! Starting and stopping apps in dependency order, and waiting for states.
//!
//! Starting: each app is started as soon as the apps it depends on are up (running, or
//! ended), independently of the others, so one slow dependency delays only its dependents
//! (no head-of-line blocking), and every start is bounded by the app's start timeout.
//!
//! Stopping (shutdown): the reverse. Each app is stopped once every app that depends on it
//! has ended; apps that listen for stop requests get their stop timeout, the others are
//! killed. Shutdown returns when every instance has ended.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::task::JoinSet;
use vyoma_lifecycle::{AppState, Event};

use crate::registry::Registry;
use crate::{Supervisor, SupervisorError};

/// Whether `dep` is up for the apps that depend on it: anything but still starting (an
/// app that is not in the set at all, as for a lone app, does not hold anyone back).
fn up(r: &Registry, dep: &str) -> bool {
    r.state(dep).is_none_or(|s| s != AppState::Starting)
}

impl Supervisor {
    /// Starts every app, each once the apps it depends on are up (running or ended), like
    /// systemd's `After=`. Returns when every app has been started. Dropping the returned
    /// future abandons the starts still waiting for their dependencies.
    pub async fn start_all(&self) {
        let order = self.names();
        self.start_in_order(order).await;
    }

    /// Starts the apps in `names` and every app they depend on, in dependency order; the
    /// others stay stopped. Returns the names that are not apps.
    pub async fn start_only(&self, names: &[String]) -> Vec<String> {
        let (unknown, order) = {
            let r = self.registry();
            let unknown: Vec<String> = names.iter().filter(|n| !r.contains(n)).cloned().collect();
            let mut wanted: BTreeSet<String> = names.iter().filter(|n| r.contains(n)).cloned().collect();
            let mut todo: Vec<String> = wanted.iter().cloned().collect();
            while let Some(n) = todo.pop() {
                for d in r.get(&n).map(|e| e.manifest.depends_on.clone()).unwrap_or_default() {
                    if wanted.insert(d.value.clone()) {
                        todo.push(d.value);
                    }
                }
            }
            let order: Vec<String> = self.names().into_iter().filter(|n| wanted.contains(n)).collect();
            (unknown, order)
        };
        self.start_in_order(order).await;
        unknown
    }

    pub(crate) async fn start_in_order(&self, order: Vec<String>) {
        let mut waiting = JoinSet::new();
        for name in order {
            let (deps, ready) = {
                let r = self.registry();
                let Some(e) = r.get(&name) else { continue };
                let deps: Vec<String> = e.manifest.depends_on.iter().map(|d| d.value.clone()).collect();
                let ready = deps.iter().all(|d| up(&r, d));
                (deps, ready)
            };
            if ready {
                self.start_at_boot(&name);
            } else {
                let sup = self.clone();
                let rt = self.inner.rt.clone();
                waiting.spawn_on(
                    async move {
                        sup.wait_until(|r| deps.iter().all(|d| up(r, d))).await;
                        sup.start_at_boot(&name);
                    },
                    &rt,
                );
            }
        }
        while waiting.join_next().await.is_some() {}
    }

    fn start_at_boot(&self, name: &str) {
        if let Err(e) = self.apply(name, Event::Start) {
            tracing::debug!(app = %name, error = %e, "not started at boot");
        }
    }

    /// Waits until no app is still starting (each has reached running, or ended), or
    /// `timeout` passes. Returns whether it got there.
    pub async fn wait_settled(&self, timeout: Duration) -> bool {
        let fut = self.wait_until(|r| r.count(AppState::Starting) == 0);
        tokio::time::timeout(timeout, fut).await.is_ok()
    }

    /// Waits until `pred` holds for the registry.
    pub(crate) async fn wait_until(&self, pred: impl Fn(&Registry) -> bool) {
        let mut rx = self.inner.changed.subscribe();
        loop {
            if pred(&self.registry()) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Waits until `app` (or, for `all`, every app that can run) is in `state`, or
    /// `timeout` passes. Returns whether it got there.
    pub async fn wait_for(&self, app: &str, state: AppState, timeout: Duration) -> Result<bool, SupervisorError> {
        if app != "all" && !self.registry().contains(app) {
            return Err(self.not_here(app));
        }
        let fut = self.wait_until(|r| {
            if app == "all" {
                r.count(state) == r.len()
            } else {
                r.state(app) == Some(state)
            }
        });
        Ok(tokio::time::timeout(timeout, fut).await.is_ok())
    }

    /// Stops `name` (asked first if it listens, killed at its stop timeout otherwise) and
    /// waits until its instance has ended. Already stopped is fine.
    pub(crate) async fn stop_and_wait(&self, name: &str) {
        let _ = self.stop(name);
        self.wait_until(|r| r.state(name).is_none_or(|s| !s.is_live())).await;
    }

    /// Stops every app and waits until every instance has ended: each app once every app
    /// that depends on it has ended (dependents first), apps that listen for stop requests
    /// with their stop timeout, the others at once. Pending restarts are cancelled.
    pub async fn shutdown(&self) {
        // No update, rollback or end of probation swaps a version in while apps stop.
        let _no_swaps = self.inner.updating.lock().await;
        let dependents: BTreeMap<String, Vec<String>> = {
            let r = self.registry();
            let mut d: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (name, e) in r.iter() {
                for dep in &e.manifest.depends_on {
                    d.entry(dep.value.clone()).or_default().push(name.clone());
                }
            }
            d
        };
        let mut stopping = JoinSet::new();
        for name in self.names().into_iter().rev() {
            let sup = self.clone();
            let after = dependents.get(&name).cloned().unwrap_or_default();
            stopping.spawn_on(
                async move {
                    sup.wait_until(|r| after.iter().all(|d| r.state(d).is_none_or(|s| !s.is_live())))
                        .await;
                    sup.stop_and_wait(&name).await;
                },
                &self.inner.rt,
            );
        }
        while stopping.join_next().await.is_some() {}
        self.close_store();
        // No restart or retry may start anything now.
        for e in self.registry().entries_mut() {
            for t in e.timers.drain(..) {
                t.abort();
            }
        }
        // Aborted instances unwind at their next yield (at most one preemption tick).
        self.inner.tasks.close();
        if tokio::time::timeout(Duration::from_secs(5), self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some app instances had not unwound 5 s after shutdown");
        }
        self.inner.tasks.reopen();
    }
}
