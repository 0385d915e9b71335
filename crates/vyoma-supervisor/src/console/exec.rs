//! Carrying out a [`Command`] against the [`Supervisor`]: a typed [`Reply`] or a typed
//! [`SupervisorError`], never text. The console renders replies
//! ([`vyoma_control::render`]); the management API sends them as JSON.

use std::sync::Arc;

use vyoma_lifecycle::{AppState, Event};

use crate::{Supervisor, SupervisorError};
use vyoma_control::{Command, Reply};

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
        Command::Inspect(app) => Reply::Inspect(Box::new(sup.detail(&app)?.report())),
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
        Command::Message {
            to,
            text,
            reply_within: None,
        } => {
            sup.send_from_console(&to, text.into_bytes())?;
            Reply::Sent { to }
        }
        Command::Message {
            to,
            text,
            reply_within: Some(wait),
        } => match sup.request_from_console(&to, text.into_bytes(), wait).await? {
            Some(answer) => Reply::Answered {
                from: to,
                text: String::from_utf8_lossy(&answer).into_owned(),
            },
            None => Reply::Unanswered { to, waited: wait },
        },
        Command::Shutdown => {
            sup.shutdown().await;
            Reply::ShutDown
        }
        Command::Update { app, source, options } => Reply::Updated(Box::new(sup.update(&app, source, options).await?)),
        Command::Rollback(app) => Reply::RolledBack(Box::new(sup.rollback(&app).await?)),
        Command::Versions(app) => Reply::Versions(Box::new(sup.versions(&app)?)),
        Command::Deploy { source, options } => Reply::Deployed(Box::new(sup.deploy(source, options).await?)),
        Command::Remove { app, purge } => Reply::Removed(Box::new(sup.remove(&app, purge).await?)),
        Command::Display => Reply::Display(Box::new(sup.display_report()?)),
        Command::Layout(l) => {
            let shown = l.to_string();
            sup.set_layout(l)?;
            Reply::Layout(shown)
        }
        Command::Focus(app) => {
            sup.focus(&app)?;
            Reply::Focused(app)
        }
        Command::Screenshot { app, path } => {
            // Encoding a PNG of the screen takes milliseconds: not on a thread apps run on.
            let s = sup.clone();
            let shot = tokio::task::spawn_blocking(move || s.screenshot_to(app.as_deref(), &path))
                .await
                .map_err(|e| crate::DisplayRequestError::Screenshot {
                    path: "(the encoder)".into(),
                    why: e.to_string(),
                })??;
            Reply::Screenshot(Box::new(shot))
        }
        Command::Input { app, events } => Reply::Injected {
            events: sup.inject(app.as_deref(), events)?,
            app,
        },
    })
}
