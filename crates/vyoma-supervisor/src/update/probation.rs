//! Probation: a new version runs for its window (`[update] probation`); a trap, a failed
//! exit or a start timeout of any of its instances, or a failed health check, within it is
//! the verdict, and the previous version is put back at once. A version still running at
//! the end of its window is committed. The verdict rules are pure ([`verdict`]).

use std::time::Duration;

use vyoma_control::RollbackReport;
use vyoma_lifecycle::{AppState, Event};
use vyoma_manifest::HealthCheck;

use crate::{Supervisor, SupervisorError};

/// How long a health check waits for its answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the health check runs during probation (more often in a shorter window).
const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// Unanswered health checks in a row that fail a trial (a wrong answer fails it at once):
/// a loaded machine may be slow to answer once.
const HEALTH_MISSES: u32 = 3;

/// A health check that did not pass.
enum Health {
    /// No answer (or not running): fails the trial after [`HEALTH_MISSES`] in a row.
    Missed(String),
    /// A wrong answer, or the check refused: fails it at once.
    Failed(String),
}

/// Whether `event`, just handled for an app whose trial's first instance is
/// `first_generation`, fails the trial, and why. `exit_taken`: the lifecycle took the exit
/// (it was the live instance's); `before`: the state before the event.
pub(crate) fn verdict(first_generation: u64, event: &Event, exit_taken: bool, before: AppState) -> Option<String> {
    match event {
        Event::Exited { generation, reason }
            if exit_taken && *generation >= first_generation && reason.is_failure() && before != AppState::Stopping =>
        {
            Some(format!("instance {generation} ended: {reason}"))
        }
        Event::StartTimedOut { generation } if *generation >= first_generation && before == AppState::Starting => {
            Some(format!("instance {generation} did not start in time"))
        }
        _ => None,
    }
}

/// The first instance of the entry's trial (0 with none).
fn t_first(e: &crate::registry::Entry) -> u64 {
    e.trial.as_ref().map_or(0, |t| t.first_generation)
}

impl Supervisor {
    /// Starts the window of trial `id`: health checks, and the commit at its end.
    pub(crate) fn arm_probation(&self, app: &str, id: u64, window: Duration, health: Option<HealthCheck>) {
        let sup = self.clone();
        let app = app.to_string();
        self.inner.rt.spawn(async move {
            // The window counts from when the new version runs (or ran to its end): until
            // then, its start timeout and its failures are the verdicts.
            sup.wait_until(|r| {
                r.get(&app).is_none_or(|e| {
                    e.trial.as_ref().is_none_or(|t| t.id != id)
                        || (e.lifecycle().generation() >= t_first(e)
                            && matches!(e.state(), AppState::Running | AppState::Exited))
                })
            })
            .await;
            if !sup.on_trial(&app, id) {
                return;
            }
            let end = tokio::time::Instant::now() + window;
            if health == Some(HealthCheck::Ipc) {
                let every = HEALTH_EVERY.min(window / 2).max(Duration::from_millis(50));
                let mut missed = 0;
                while tokio::time::Instant::now() + every < end {
                    tokio::time::sleep(every).await;
                    if !sup.on_trial(&app, id) {
                        return;
                    }
                    match sup.health_problem(&app).await {
                        None => missed = 0,
                        Some(Health::Missed(why)) if missed + 1 < HEALTH_MISSES => {
                            missed += 1;
                            if let Ok(log) = sup.log(&app) {
                                log.note(&format!(
                                    "health check missed ({missed} of {HEALTH_MISSES} in a row): {why}"
                                ));
                            }
                        }
                        Some(Health::Missed(why) | Health::Failed(why)) => {
                            sup.fail_trial(&app, id, format!("failed its health check: {why}"))
                                .await;
                            return;
                        }
                    }
                }
            }
            tokio::time::sleep_until(end).await;
            sup.end_probation(&app, id).await;
        });
    }

    pub(crate) fn on_trial(&self, app: &str, id: u64) -> bool {
        if self.inner.closing.load(std::sync::atomic::Ordering::Acquire) {
            return false;
        }
        self.registry()
            .get(app)
            .and_then(|e| e.trial.as_ref())
            .is_some_and(|t| t.id == id)
    }

    /// One IPC health check: the request `health` from the console, answered `ok`.
    async fn health_problem(&self, app: &str) -> Option<Health> {
        if self.registry().get(app).map(|e| e.state()) != Some(AppState::Running) {
            return Some(Health::Missed("it is not running".into()));
        }
        match self.request_from_console(app, b"health".to_vec(), HEALTH_TIMEOUT).await {
            Ok(Some(answer)) if answer == b"ok" => None,
            Ok(Some(answer)) => Some(Health::Failed(format!(
                "it answered `{}`, not `ok`",
                String::from_utf8_lossy(&answer[..answer.len().min(80)]).escape_debug()
            ))),
            Ok(None) => Some(Health::Missed(format!(
                "no answer within {}",
                humantime::format_duration(HEALTH_TIMEOUT)
            ))),
            Err(e) => Some(Health::Failed(e.to_string())),
        }
    }

    /// The verdict came in (from `apply`, under the registry lock): roll back, on a task.
    pub(crate) fn trial_failed(&self, app: &str, id: u64, reason: String) {
        let sup = self.clone();
        let app = app.to_string();
        self.inner
            .rt
            .spawn(async move { sup.fail_trial(&app, id, reason).await });
    }

    async fn fail_trial(&self, app: &str, id: u64, reason: String) {
        let _one_at_a_time = self.inner.updating.lock().await;
        if !self.on_trial(app, id) {
            return;
        }
        match self
            .roll_back_trial(app, id, &format!("probation: {reason}"), true)
            .await
        {
            Ok(Some(r)) => tracing::warn!(app = %app, version = id, reason = %r.reason.escape_debug(), "rolled back"),
            Ok(None) => {}
            Err(e) => tracing::error!(app = %app, version = id, error = %e, "rollback failed"),
        }
    }

    /// Turns down trial `id` of `app` and puts its previous version back (running it, with
    /// `start`). `None` if that trial is over already. Call with the update lock held.
    pub(crate) async fn roll_back_trial(
        &self,
        app: &str,
        id: u64,
        reason: &str,
        start: bool,
    ) -> Result<Option<RollbackReport>, SupervisorError> {
        let previous = {
            let mut apps = self.registry();
            let Some(e) = apps.get_mut(app) else { return Ok(None) };
            if e.trial.as_ref().is_none_or(|t| t.id != id) {
                return Ok(None);
            }
            e.trial.take().expect("just checked").previous
        };
        let (from, _) = self.running(app)?;
        let Some(previous) = previous else {
            return self.turn_down_first(app, id, reason, from).await.map(Some);
        };
        // The previous version runs again first (fast): a crash before the store says so
        // leaves the trial in the store, which is turned down when it is opened again.
        let to = previous.brief();
        let swap = self.swap(app, previous, None, "rollback", start).await?;
        let a = app.to_string();
        let why = reason.to_string();
        let stored = self.with_store(move |s| s.reject(&a, id, &why)).await;
        let note = format!(
            "version {id} turned down ({reason}); version {} runs again (swapped in {:.1} ms)",
            to.id.map_or_else(|| "factory".to_string(), |v| v.to_string()),
            swap.total.as_secs_f64() * 1000.0
        );
        if let Ok(log) = self.log(app) {
            log.note(&note);
        }
        stored?;
        Ok(Some(RollbackReport {
            app: app.to_string(),
            from: from.brief(),
            to: Some(to),
            reason: reason.to_string(),
            swap: Some(swap),
        }))
    }

    /// Turns down the first version of a deployed app (trial `id`, taken off the entry
    /// already): there is nothing to go back to, so the app is killed and kept stopped,
    /// and the store forgets it. It stays listed, with its log, until removed or deployed
    /// again.
    async fn turn_down_first(
        &self,
        app: &str,
        id: u64,
        reason: &str,
        from: super::Running,
    ) -> Result<RollbackReport, SupervisorError> {
        // Killing it also cancels a restart the policy may have set up.
        let _ = self.apply(app, Event::Kill);
        if let Some(e) = self.registry().get_mut(app) {
            e.version = None;
        }
        let a = app.to_string();
        let why = reason.to_string();
        let stored = self.with_store(move |s| s.reject(&a, id, &why)).await;
        if let Ok(log) = self.log(app) {
            log.note(&format!(
                "version {id} turned down ({reason}); it was the app's first version, so the app is stopped and not kept: deploy a fixed version, or remove it"
            ));
        }
        stored?;
        Ok(RollbackReport {
            app: app.to_string(),
            from: from.brief(),
            to: None,
            reason: reason.to_string(),
            swap: None,
        })
    }

    /// The window of trial `id` is over: committed if it runs (or ran to a clean end). A
    /// version the operator stopped during its window is turned down, and its predecessor
    /// put back in place, stopped.
    async fn end_probation(&self, app: &str, id: u64) {
        let _one_at_a_time = self.inner.updating.lock().await;
        if !self.on_trial(app, id) {
            return;
        }
        let (state, last_exit) = {
            let apps = self.registry();
            let Some(e) = apps.get(app) else { return };
            if e.trial.as_ref().is_none_or(|t| t.id != id) {
                return;
            }
            (e.state(), e.lifecycle().last_exit().cloned())
        };
        let clean_end = state == AppState::Exited && last_exit.as_ref().is_some_and(|r| !r.is_failure());
        if state != AppState::Running && !clean_end {
            let stopped = matches!(state, AppState::Stopped | AppState::Stopping);
            let reason = if stopped {
                "probation: the operator stopped it before its probation ended".to_string()
            } else {
                format!("probation: it was {state} at the end of its probation")
            };
            if let Err(e) = self.roll_back_trial(app, id, &reason, !stopped).await {
                tracing::error!(app = %app, version = id, error = %e, "rollback failed");
            }
            return;
        }
        let a = app.to_string();
        match self.with_store(move |s| s.commit(&a, id)).await {
            Ok(_) => {
                if let Some(e) = self.registry().get_mut(app) {
                    e.trial = None;
                    e.log.note(&format!("version {id} passed its probation: committed"));
                }
                tracing::info!(app = %app, version = id, "committed");
            }
            Err(e) => {
                // Not committed: it stays the trial, and after a restart the committed
                // version runs. Say so.
                if let Ok(log) = self.log(app) {
                    log.note(&format!(
                        "version {id} passed its probation but could not be committed: {e}"
                    ));
                }
                tracing::error!(app = %app, version = id, error = %e, "commit failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vyoma_lifecycle::{ExitReason, TrapKind};

    #[test]
    fn failures_of_the_trials_instances_are_verdicts_and_nothing_else_is() {
        let trap = ExitReason::Trap {
            kind: TrapKind::Unreachable,
            message: "boom".into(),
        };
        let exited = |generation, reason: ExitReason| Event::Exited { generation, reason };
        // An instance of the old version ending is not the trial's.
        assert_eq!(verdict(3, &exited(2, trap.clone()), true, AppState::Running), None);
        assert!(
            verdict(3, &exited(3, trap.clone()), true, AppState::Running)
                .unwrap()
                .contains("instance 3 ended")
        );
        // A later instance (after a policy restart) is the trial's too.
        assert!(verdict(3, &exited(5, ExitReason::Code(1)), true, AppState::Running).is_some());
        // A clean exit, an exit the lifecycle ignored, an exit asked for: not failures.
        assert_eq!(
            verdict(3, &exited(3, ExitReason::Code(0)), true, AppState::Running),
            None
        );
        assert_eq!(verdict(3, &exited(3, trap.clone()), false, AppState::Running), None);
        assert_eq!(
            verdict(3, &exited(3, ExitReason::Killed), true, AppState::Stopping),
            None
        );
        assert!(verdict(3, &Event::StartTimedOut { generation: 3 }, true, AppState::Starting).is_some());
        assert_eq!(
            verdict(3, &Event::StartTimedOut { generation: 3 }, true, AppState::Running),
            None
        );
    }
}
