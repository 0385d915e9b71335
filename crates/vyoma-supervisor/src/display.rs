//! The supervisor's side of the display: which apps are on it (those whose manifest grants
//! `display`, in start order), what their tiles show while they do not draw (a placeholder
//! from their lifecycle: "restarting... 2/5", "failed"), and each instance's session.
//!
//! Not here: the compositor and its clock (`vyoma-display`), the host calls (the
//! runtime's), backends and devices (the front end's, which also runs the clock).

use std::path::Path;
use std::sync::Arc;

use vyoma_control::{DisplayApp, DisplayReport, ScreenshotReport};
use vyoma_display::{Display, DisplayError, Grant, InjectError, Input, Layout, Session, Size};
use vyoma_lifecycle::AppState;
use vyoma_manifest::Manifest;

use crate::Supervisor;

/// What `m` may have on the display, if anything.
pub(crate) fn grant_of(m: &Manifest) -> Option<Grant> {
    let d = m.capabilities.display?;
    let i = m.capabilities.input;
    Some(Grant {
        max: Size::new(d.max_width, d.max_height),
        keyboard: i.keyboard,
        pointer: i.pointer,
        touch: i.touch,
    })
}

/// What an app's tile shows in `state` instead of its surface (none while it runs: its
/// surface, once it makes one), given its policy restarts within the restart period
/// (`recent`) and how many it may have (`intensity`). Plain ASCII: the bundled font has
/// nothing else.
pub(crate) fn placeholder(state: AppState, recent: u32, intensity: u32) -> Option<String> {
    let restarting = || format!("restarting... {recent}/{intensity}");
    Some(match state {
        AppState::Running => return None,
        AppState::Starting if recent > 0 => restarting(),
        AppState::Starting => "starting...".into(),
        AppState::Backoff => restarting(),
        AppState::Stopping => "stopping...".into(),
        AppState::Exited => "exited".into(),
        AppState::Failed => "failed".into(),
        AppState::Stopped => "stopped".into(),
    })
}

/// Whether an app in `state` no longer draws, so the focus should leave it.
fn gone(state: AppState) -> bool {
    !matches!(state, AppState::Starting | AppState::Running)
}

/// Why the operator's display request was refused.
#[derive(Debug, thiserror::Error)]
pub enum DisplayRequestError {
    /// The supervisor runs without a screen.
    #[error("this instance has no display: start it with one (`vyoma run --display headless`)")]
    NoDisplay,
    /// The compositor refused.
    #[error(transparent)]
    Display(#[from] DisplayError),
    /// An injected event was refused.
    #[error(transparent)]
    Inject(#[from] InjectError),
    /// A tile names an app that is not on the display.
    #[error("`tiles` names `{app}`, which is not on the display (its apps: {on})")]
    NotOnDisplay {
        /// The app.
        app: String,
        /// The apps that are.
        on: String,
    },
    /// The screenshot could not be made or written.
    #[error("cannot write the screenshot {path}: {why}")]
    Screenshot {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
}

impl Supervisor {
    fn screen(&self) -> Result<&Arc<Display>, DisplayRequestError> {
        self.display().ok_or(DisplayRequestError::NoDisplay)
    }

    /// `display`: the screen and every app on it.
    pub fn display_report(&self) -> Result<DisplayReport, DisplayRequestError> {
        let s = self.screen()?.status();
        Ok(DisplayReport {
            backend: s.backend,
            width: s.size.w,
            height: s.size.h,
            layout: s.layout.to_string(),
            focused: s.focused,
            frames: s.frames,
            apps: s
                .apps
                .into_iter()
                .map(|a| DisplayApp {
                    app: a.app,
                    tile: a.tile.map(|r| [r.x.into(), r.y.into(), r.w.into(), r.h.into()]),
                    surface: a.surface.as_ref().map(|(z, _)| [z.w, z.h]),
                    title: a.surface.map(|(_, t)| t),
                    placeholder: a.placeholder,
                    dropped_events: a.dropped,
                })
                .collect(),
        })
    }

    /// `layout`: tiles may name only apps on the display.
    pub fn set_layout(&self, layout: Layout) -> Result<(), DisplayRequestError> {
        let d = self.screen()?;
        if let Layout::Tiles(names) = &layout {
            let on: Vec<String> = d.status().apps.into_iter().map(|a| a.app).collect();
            if let Some(missing) = names.iter().find(|n| !on.contains(n)) {
                return Err(DisplayRequestError::NotOnDisplay {
                    app: missing.clone(),
                    on: vyoma_control::backquoted(&on),
                });
            }
        }
        d.set_layout(layout);
        Ok(())
    }

    /// `focus APP`.
    pub fn focus(&self, app: &str) -> Result<(), DisplayRequestError> {
        Ok(self.screen()?.focus(app)?)
    }

    /// `input`: to `app` itself, or routed as from a device.
    pub fn inject(&self, app: Option<&str>, events: Vec<Input>) -> Result<usize, DisplayRequestError> {
        let d = self.screen()?;
        let n = events.len();
        for e in events {
            match app {
                Some(a) => d.inject(a, e)?,
                None => {
                    d.input(e);
                }
            }
        }
        Ok(n)
    }

    /// The screen (or `app`'s surface) as PNG, with its size.
    pub fn screenshot_png(&self, app: Option<&str>) -> Result<(Vec<u8>, Size), DisplayRequestError> {
        let (frame, _) = self.screen()?.screenshot(app)?;
        let png = vyoma_display::png::encode(&frame).map_err(|e| DisplayRequestError::Screenshot {
            path: "(in memory)".into(),
            why: e.to_string(),
        })?;
        Ok((png, frame.size))
    }

    /// `screenshot [APP] FILE`: written on the supervisor's machine, whole or not at all.
    pub fn screenshot_to(&self, app: Option<&str>, path: &Path) -> Result<ScreenshotReport, DisplayRequestError> {
        let (png, size) = self.screenshot_png(app)?;
        let fail = |why: String| DisplayRequestError::Screenshot {
            path: path.display().to_string(),
            why,
        };
        // Beside it, then renamed over it: a reader never sees half a picture.
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".part");
        std::fs::write(&tmp, &png)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                fail(e.to_string())
            })?;
        Ok(ScreenshotReport {
            app: app.map(str::to_string),
            path: path.display().to_string(),
            width: size.w,
            height: size.h,
            bytes: png.len() as u64,
        })
    }

    /// Puts the apps granted `display` on `display`, each tile showing its state until the
    /// app draws; from now on each instance of them gets a session. Once per supervisor:
    /// a second display is ignored (and `false` returned).
    pub fn show_on(&self, display: Arc<Display>) -> bool {
        if self.inner.display.set(display).is_err() {
            return false;
        }
        let order = self.order().clone();
        for name in order {
            let shown = self
                .registry()
                .get(&name)
                .map(|e| (e.manifest.clone(), e.state(), e.lifecycle().recent_restarts()));
            if let Some((m, state, recent)) = shown {
                self.display_app(&m);
                self.display_state(&name, state, recent, m.restart.intensity, false);
            }
        }
        true
    }

    /// The display, if the supervisor has one.
    pub fn display(&self) -> Option<&Arc<Display>> {
        self.inner.display.get()
    }

    /// A session for a starting instance of `name`, if it is on the display.
    pub(crate) fn display_session(&self, name: &str) -> Option<Session> {
        self.display()?.attach(name)
    }

    /// Puts `m`'s app on the display with its grant (or a new version's), or takes it off
    /// if it has none.
    pub(crate) fn display_app(&self, m: &Manifest) {
        let Some(d) = self.display() else { return };
        match grant_of(m) {
            Some(g) => d.add_app(&m.name, g),
            None => d.remove_app(&m.name),
        }
    }

    /// Takes `name` off the display (it was removed).
    pub(crate) fn display_forget(&self, name: &str) {
        if let Some(d) = self.display() {
            d.remove_app(name);
        }
    }

    /// Shows `name`'s new state in its tile; with `moved` (it just changed state), the
    /// focus leaves an app that stopped drawing.
    pub(crate) fn display_state(&self, name: &str, state: AppState, recent: u32, intensity: u32, moved: bool) {
        if let Some(d) = self.display().filter(|d| d.has_app(name)) {
            let text = placeholder(state, recent, intensity);
            d.set_placeholder(name, text.as_deref(), moved && gone(state));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_say_what_the_app_is_doing() {
        let p = |s, r| placeholder(s, r, 5);
        assert_eq!(p(AppState::Running, 3), None);
        assert_eq!(p(AppState::Starting, 0).as_deref(), Some("starting..."));
        assert_eq!(p(AppState::Backoff, 2).as_deref(), Some("restarting... 2/5"));
        assert_eq!(p(AppState::Starting, 2).as_deref(), Some("restarting... 2/5"));
        assert_eq!(p(AppState::Failed, 5).as_deref(), Some("failed"));
        assert_eq!(p(AppState::Stopped, 0).as_deref(), Some("stopped"));
        assert!(gone(AppState::Backoff) && gone(AppState::Failed) && !gone(AppState::Starting));
    }
}
