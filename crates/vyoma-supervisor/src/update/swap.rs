//! Swapping one version of an app for another: the inbox handed over from the outgoing
//! instance (it finishes the message it took, up to a grace period), HTTP requests in
//! flight let finish, the new manifest and component put in the registry, grants and routes
//! updated, and the lifecycle told ([`Event::Replace`]).

use std::time::{Duration, Instant};

use vyoma_control::SwapReport;
use vyoma_ipc::Settled;
use vyoma_lifecycle::Event;

use super::{Running, Trial};
use crate::{Supervisor, SupervisorError};

/// Longest an update waits for the outgoing instance to finish its message (or its HTTP
/// requests); its stop timeout, if shorter.
pub(crate) const HANDOVER_GRACE: Duration = Duration::from_secs(5);

impl Supervisor {
    /// Puts `next` in place of `app`'s running version; with `trial`, on probation (its
    /// number, and the version to put back). With `start`, a new instance runs it;
    /// without, the app stays as it is (stopped) with the new version in place.
    pub(crate) async fn swap(
        &self,
        app: &str,
        next: Running,
        trial: Option<(u64, Option<Running>)>,
        why: &str,
        start: bool,
    ) -> Result<SwapReport, SupervisorError> {
        let t0 = Instant::now();
        let (live, grace, http) = {
            let apps = self.registry();
            let e = apps.get(app).ok_or_else(|| self.not_here(app))?;
            (
                e.state().is_live(),
                e.lifecycle().timeouts().stop.min(HANDOVER_GRACE),
                e.is_http(),
            )
        };
        // A dead instance holds nothing it could still finish.
        let grace = if live { grace } else { Duration::ZERO };
        let handover = self.inner.broker.hand_over(app);
        let settled = match &handover {
            Some(h) => h.settle(tokio::time::Instant::now() + grace).await,
            None => Settled::Quiet,
        };
        let (mut unfinished_from, mut unfinished) = (Vec::new(), 0);
        if let (Some(h), Settled::Holding(held)) = (&handover, &settled) {
            h.abandon(held);
            unfinished_from = held.iter().map(|h| h.sender.to_string()).collect();
            unfinished_from.sort_unstable();
            unfinished_from.dedup();
            unfinished = held.len();
        }
        if http && live {
            self.inner.gateway.settle(app, grace.saturating_sub(t0.elapsed())).await;
        }
        let handed_over = t0.elapsed();
        let manifest = next.manifest.clone();
        let routes_changed;
        {
            let mut apps = self.registry();
            let e = apps.get_mut(app).ok_or_else(|| self.not_here(app))?;
            routes_changed = e.manifest.http.routes != manifest.http.routes;
            let note = format!(
                "{why}: version {} ({}) replaces {} ({})",
                next.version.map_or_else(|| "factory".to_string(), |v| v.to_string()),
                manifest.version,
                e.version.map_or_else(|| "factory".to_string(), |v| v.to_string()),
                e.manifest.version
            );
            e.log.note(&note);
            if !unfinished_from.is_empty() {
                let from = vyoma_control::backquoted(&unfinished_from);
                let what = if unfinished == 1 {
                    "a message".to_string()
                } else {
                    format!("{unfinished} messages")
                };
                e.log.note(&format!(
                    "{why}: the outgoing instance was still handling {what} from {from} after {}: not handed over",
                    humantime::format_duration(grace)
                ));
            }
            e.trial = trial.map(|(id, previous)| Trial {
                id,
                first_generation: e.lifecycle().generation() + 1,
                previous,
            });
            e.manifest = next.manifest;
            e.component = next.component;
            e.version = next.version;
            if !start {
                e.reconfigure(&manifest);
            }
        }
        self.inner.broker.reconfigure(&crate::ipc_spec(&manifest));
        self.display_app(&manifest);
        if routes_changed {
            self.reroute();
        }
        if start {
            self.apply(
                app,
                Event::Replace {
                    policy: manifest.restart,
                    timeouts: manifest.lifecycle,
                },
            )?;
        }
        Ok(SwapReport {
            handover: handed_over,
            total: t0.elapsed(),
            unfinished_from,
        })
    }

    /// Rebuilds the gateway's routes from every app's manifest.
    pub(crate) fn reroute(&self) {
        let apps = self.registry();
        let router = vyoma_http::Router::from_manifests(apps.iter().map(|(_, e)| &*e.manifest));
        self.inner.gateway.set_router(router);
    }
}
