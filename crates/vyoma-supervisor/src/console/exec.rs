//! Carrying out a [`Command`] against the [`Supervisor`]: a typed [`Reply`] or a typed
//! [`SupervisorError`], never text. The console renders replies ([`super::render`]); the
//! management API can serialise the same values.

use std::sync::Arc;
use std::time::Duration;

use vyoma_lifecycle::{AppState, Event, LogLine};

use crate::{AppDetail, AppStatus, StopOutcome, Supervisor, SupervisorError};
use vyoma_control::Command;

/// What a command produced.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Nothing to report (a blank line or comment).
    Nothing,
    /// The command list.
    Help,
    /// One row per app.
    Ps(Vec<AppStatus>),
    /// An app's held log lines (the newest, if a count was given).
    Log {
        /// The app.
        app: String,
        /// The lines, oldest first.
        lines: Vec<LogLine>,
    },
    /// Follow an app's log: the session streams it (for `duration`, or until stopped).
    Follow {
        /// The app.
        app: String,
        /// How long.
        duration: Option<Duration>,
    },
    /// The app is starting.
    Started(String),
    /// `stop`: what happened.
    Stopping {
        /// The app.
        app: String,
        /// Asked (with its timeout), or stopped at once.
        outcome: StopOutcome,
    },
    /// The app was stopped and stays stopped.
    Killed(String),
    /// The app is restarting.
    Restarting(String),
    /// Everything known about an app.
    Inspect(Box<AppDetail>),
    /// The app (or `all`) reached the state.
    Reached {
        /// The app, or `all`.
        app: String,
        /// The state.
        state: AppState,
    },
    /// The message was queued for the app.
    Sent {
        /// The receiver.
        to: String,
    },
    /// Every app was stopped; the supervisor is shutting down.
    ShutDown,
}

/// Carries out `cmd`. A `wait` that times out is an error that says where each app is.
pub async fn execute(sup: &Supervisor, cmd: Command) -> Result<Reply, SupervisorError> {
    Ok(match cmd {
        Command::Nothing => Reply::Nothing,
        Command::Help => Reply::Help,
        Command::Ps => Reply::Ps(sup.status()),
        Command::Log { app, last } => {
            let log = sup.log(&app)?;
            let (mut lines, _) = log.since(0);
            if let Some(n) = last {
                lines.drain(..lines.len().saturating_sub(n));
            }
            Reply::Log { app, lines }
        }
        Command::Logf { app, duration } => {
            sup.log(&app)?;
            Reply::Follow { app, duration }
        }
        Command::Start(app) => {
            sup.apply(&app, Event::Start)?;
            Reply::Started(app)
        }
        Command::Stop(app) => {
            let outcome = sup.stop(&app)?;
            Reply::Stopping { app, outcome }
        }
        Command::Kill(app) => {
            sup.apply(&app, Event::Kill)?;
            Reply::Killed(app)
        }
        Command::Restart(app) => {
            sup.apply(&app, Event::Restart)?;
            Reply::Restarting(app)
        }
        Command::Inspect(app) => Reply::Inspect(Box::new(sup.detail(&app)?)),
        Command::Wait { app, state, timeout } => {
            if sup.wait_for(&app, state, timeout).await? {
                Reply::Reached { app, state }
            } else {
                let elsewhere: Vec<(String, AppState)> = if app == "all" {
                    sup.status()
                        .into_iter()
                        .filter(|r| r.state != state)
                        .map(|r| (r.name, r.state))
                        .collect()
                } else {
                    sup.detail(&app)
                        .map(|d| vec![(app.clone(), d.status.state)])
                        .unwrap_or_default()
                };
                return Err(SupervisorError::WaitTimedOut {
                    app,
                    state,
                    timeout,
                    elsewhere: Arc::new(elsewhere),
                });
            }
        }
        Command::Message { to, text } => {
            sup.send_from_console(&to, text.into_bytes())?;
            Reply::Sent { to }
        }
        Command::Shutdown => {
            sup.shutdown().await;
            Reply::ShutDown
        }
    })
}
