//! The display server: the one [`Compositor`] behind a lock, shared by the apps' calls
//! (each running instance holds a [`Session`]), the operator's commands, input devices
//! and the display's clock ([`Display::run`]).
//!
//! The clock sleeps while nothing changes: a present, a frame request, a placeholder, a
//! layout or focus change wakes it, and it then ticks at the next frame boundary (a
//! backend's period, 60 Hz without one), so an idle screen costs no wake-ups and an
//! animating one is paced. Each app's frame, resize and input events wait in its
//! [`Session`]'s queue with a [`watch`] of what is ready, for the host's pollables.
//!
//! What it is not for: the WIT host calls (the runtime's), charging surfaces to memory
//! limits (the runtime's, using [`Session::pixels_needed`]), or devices (backends feed
//! [`Display::input`] and show what [`Backend::present`] gets).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use crate::backend::Backend;
use crate::compositor::{Compositor, Routed, Tick};
use crate::focus::{Input, Phase};
use crate::geom::{Rect, Size};
use crate::layout::Layout;
use crate::{DisplayError, Frame};

/// Most events waiting for one app; past it pointer moves are merged and the oldest
/// events dropped (and counted).
pub const QUEUE: usize = 256;
/// Longest surface title kept (characters).
pub const MAX_TITLE: usize = 256;
/// The clock's period without a backend's own (60 Hz).
pub const DEFAULT_PERIOD: Duration = Duration::from_nanos(16_666_667);
/// How many recent samples [`Stats`] keeps of each kind.
pub const SAMPLES: usize = 4096;

/// What the display may give an app, from its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The largest surface.
    pub max: Size,
    /// Keys and focus changes.
    pub keyboard: bool,
    /// Pointer events.
    pub pointer: bool,
    /// Touch events.
    pub touch: bool,
}

impl Grant {
    fn admits(&self, e: &Event) -> bool {
        match e.kind() {
            "keyboard" => self.keyboard,
            "pointer" => self.pointer,
            "touch" => self.touch,
            _ => false,
        }
    }
}

/// An input event for one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A key, pointer or touch event, in the app's surface coordinates.
    Input(Input),
    /// The app got (true) or lost (false) the keyboard focus.
    Focus(bool),
}

impl Event {
    /// The grant it needs: `keyboard` (keys and focus), `pointer` or `touch`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Input(Input::Key { .. }) | Event::Focus(_) => "keyboard",
            Event::Input(Input::Pointer { .. }) => "pointer",
            Event::Input(Input::Touch { .. }) => "touch",
        }
    }
}

/// What is waiting for an app (what its pollables wait for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ready {
    /// A frame event.
    pub frame: bool,
    /// A resize event.
    pub resize: bool,
    /// Input events.
    pub input: bool,
}

#[derive(Debug)]
struct Client {
    grant: Grant,
    /// Whether an instance holds a session (events for an app not running are dropped).
    attached: bool,
    /// The newest session's number: an older session ending later changes nothing.
    session: u64,
    /// With when each was queued.
    events: VecDeque<(Event, Instant)>,
    dropped: u64,
    frame: Option<u64>,
    resize: Option<Size>,
    ready: watch::Sender<Ready>,
}

impl Client {
    fn new(grant: Grant) -> Client {
        Client {
            grant,
            attached: false,
            session: 0,
            events: VecDeque::new(),
            dropped: 0,
            frame: None,
            resize: None,
            ready: watch::Sender::new(Ready::default()),
        }
    }

    fn publish(&self) {
        let now = Ready {
            frame: self.frame.is_some(),
            resize: self.resize.is_some(),
            input: !self.events.is_empty(),
        };
        self.ready.send_if_modified(|r| std::mem::replace(r, now) != now);
    }

    fn push(&mut self, e: Event) {
        if !self.attached || !self.grant.admits(&e) {
            return;
        }
        let is_move = |e: &Event| matches!(e, Event::Input(Input::Pointer { phase: Phase::Move, .. }));
        let mut queued = Instant::now();
        // A move after a move: only where the pointer is now matters (and it has waited
        // since the first of them).
        if is_move(&e) && self.events.back().is_some_and(|(b, _)| is_move(b)) {
            if let Some((_, t)) = self.events.pop_back() {
                queued = t;
            }
        } else if self.events.len() >= QUEUE {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back((e, queued));
        self.publish();
    }

    fn clear(&mut self) {
        self.events.clear();
        self.frame = None;
        self.resize = None;
        self.publish();
    }
}

/// One app's place on the display, for `display` in the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppStatus {
    /// The app.
    pub app: String,
    /// Where its tile is, if shown.
    pub tile: Option<Rect>,
    /// Its surface's size and title, if it has one.
    pub surface: Option<(Size, String)>,
    /// The placeholder shown instead, if any.
    pub placeholder: Option<String>,
    /// Input events dropped because its queue was full.
    pub dropped: u64,
}

/// The display's state, for `display` in the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The backend's name.
    pub backend: String,
    /// The screen's size.
    pub size: Size,
    /// The layout.
    pub layout: Layout,
    /// The focused app.
    pub focused: Option<String>,
    /// Frames composed and shown since start (or a benchmark's [`Display::reset_stats`]).
    pub frames: u64,
    /// Every app on the display, in the operator's order.
    pub apps: Vec<AppStatus>,
}

/// What the display measured of itself, for benchmarks and `display`: the most recent
/// [`SAMPLES`] of each kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames that showed something new.
    pub frames: u64,
    /// Time spent composing them (in [`Display::tick`]).
    pub composing: Duration,
    /// Between one shown frame and the next, while frames follow each other (an idle
    /// pause is not an interval).
    pub intervals: VecDeque<Duration>,
    /// From an input event's arrival (a device, a window, the operator) to the app taking
    /// it.
    pub input_latency: VecDeque<Duration>,
}

fn sample(v: &mut VecDeque<Duration>, d: Duration) {
    if v.len() >= SAMPLES {
        v.pop_front();
    }
    v.push_back(d);
}

#[derive(Debug)]
struct State {
    comp: Compositor,
    stats: Stats,
    /// When the last shown frame was, if the one before the last tick showed one too.
    last_shown: Option<Instant>,
    clients: HashMap<String, Client>,
    /// Ticks so far (a frame event's sequence).
    sequence: u64,
    /// Regions composed outside a tick (for a screenshot), still to show.
    unflushed: Vec<Rect>,
}

impl State {
    /// Tells the apps whose focus changed since `before`.
    fn focus_moved(&mut self, before: Option<String>) {
        let now = self.comp.focused().map(str::to_string);
        if now == before {
            return;
        }
        for (app, on) in [(before, false), (now, true)] {
            if let Some(c) = app.and_then(|a| self.clients.get_mut(&a)) {
                c.push(Event::Focus(on));
            }
        }
    }

    fn deliver(&mut self, routed: &Routed) {
        if let Routed::App { app, event } = routed
            && let Some(c) = self.clients.get_mut(app)
        {
            c.push(Event::Input(event.clone()));
        }
    }
}

/// The one display of a supervisor.
#[derive(Debug)]
pub struct Display {
    backend: String,
    state: Mutex<State>,
    /// The clock: something may need composing or answering.
    wake: Notify,
}

impl Display {
    /// A display of `size` under `layout` (a status bar if `bar`), shown by a backend
    /// called `backend`.
    pub fn new(backend: &str, size: Size, layout: Layout, bar: bool) -> Arc<Display> {
        Arc::new(Display {
            backend: backend.to_string(),
            state: Mutex::new(State {
                comp: Compositor::new(size, layout, bar),
                stats: Stats::default(),
                last_shown: None,
                clients: HashMap::new(),
                sequence: 0,
                unflushed: Vec::new(),
            }),
            wake: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change to the state is made whole under the lock: a panic elsewhere while
        // holding it leaves consistent data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f`, which cannot move the focus (an app's present or frame request: the
    /// per-frame path), on the state and wakes the clock.
    fn wake_after<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.lock());
        self.wake.notify_one();
        out
    }

    /// Runs `f` on the state, tells apps whose focus it moved, and wakes the clock.
    fn change<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = {
            let mut s = self.lock();
            let before = s.comp.focused().map(str::to_string);
            let out = f(&mut s);
            s.focus_moved(before);
            out
        };
        self.wake.notify_one();
        out
    }

    /// Puts `app` on the display (at the end of the operator's order) with `grant`, or
    /// changes the grant of an app already on it (a new version).
    pub fn add_app(&self, app: &str, grant: Grant) {
        self.change(|s| {
            s.comp.add_app(app);
            s.clients
                .entry(app.to_string())
                .and_modify(|c| c.grant = grant)
                .or_insert_with(|| Client::new(grant));
        });
    }

    /// Takes `app` off the display (it was removed, or lost its grant). An app that was
    /// never on it (the supervisor says this of every app without the grant) changes
    /// nothing and wakes no one.
    pub fn remove_app(&self, app: &str) {
        if !self.has_app(app) {
            return;
        }
        self.change(|s| {
            s.comp.remove_app(app);
            if let Some(mut c) = s.clients.remove(app) {
                c.clear();
            }
        });
    }

    /// Whether `app` is on the display.
    pub fn has_app(&self, app: &str) -> bool {
        self.lock().clients.contains_key(app)
    }

    /// The session of a starting instance of `app`; `None` if `app` is not on the display.
    /// Events routed to `app` wait for it from now until the session is dropped.
    pub fn attach(self: &Arc<Self>, app: &str) -> Option<Session> {
        let mut s = self.lock();
        let focused = s.comp.focused() == Some(app);
        let c = s.clients.get_mut(app)?;
        c.clear();
        c.attached = true;
        c.session += 1;
        if focused {
            c.push(Event::Focus(true));
        }
        Some(Session {
            display: self.clone(),
            app: app.to_string(),
            grant: c.grant,
            number: c.session,
            ready: c.ready.subscribe(),
        })
    }

    /// Shows `text` in `app`'s tile instead of its surface (`None`: the surface again);
    /// with `away`, the focus leaves it (it stopped drawing) for the app before it.
    pub fn set_placeholder(&self, app: &str, text: Option<&str>, away: bool) {
        self.change(|s| {
            let _ = s.comp.set_placeholder(app, text);
            if away {
                s.comp.unfocus(app);
            }
        });
    }

    /// Draws the pointer (a mouse is plugged in), or stops drawing it.
    pub fn show_cursor(&self, on: bool) {
        self.change(|s| s.comp.show_cursor(on));
    }

    /// Shows `r` of the screen again at the next frame (a backend lost those pixels).
    pub fn redraw(&self, r: Rect) {
        self.wake_after(|s| s.comp.redraw(r));
    }

    /// Changes the layout (the operator's call).
    pub fn set_layout(&self, layout: Layout) {
        self.change(|s| s.comp.set_layout(layout));
    }

    /// Focuses `app` (the operator's call).
    pub fn focus(&self, app: &str) -> Result<(), DisplayError> {
        self.change(|s| s.comp.focus(app))
    }

    /// An event from an input device, a window or the operator, in screen coordinates:
    /// routed as the compositor decides (the focus chord included).
    pub fn input(&self, input: Input) -> Routed {
        self.change(|s| {
            let routed = s.comp.route(input);
            s.deliver(&routed);
            routed
        })
    }

    /// An event for `app` itself, in its surface's coordinates (the operator's `input
    /// APP ...`): no routing, no chord. Refused for an app not on the display, not running,
    /// or whose grant does not take that kind of event.
    pub fn inject(&self, app: &str, input: Input) -> Result<(), InjectError> {
        let mut s = self.lock();
        let c = s
            .clients
            .get_mut(app)
            .ok_or_else(|| InjectError::NotOnDisplay(app.to_string()))?;
        let e = Event::Input(input);
        if !c.grant.admits(&e) {
            return Err(InjectError::NotGranted {
                app: app.to_string(),
                kind: e.kind(),
            });
        }
        if !c.attached {
            return Err(InjectError::NotRunning(app.to_string()));
        }
        c.push(e);
        Ok(())
    }

    /// The screen as it stands, everything presented so far included (`app`: that app's
    /// surface alone, with its title).
    pub fn screenshot(&self, app: Option<&str>) -> Result<(Frame, String), DisplayError> {
        let mut s = self.lock();
        match app {
            Some(a) => s.comp.surface(a),
            None => {
                let composed = s.comp.compose();
                s.unflushed.extend(composed);
                Ok((s.comp.frame().clone(), String::new()))
            }
        }
    }

    /// What the display shows and who is on it.
    pub fn status(&self) -> Status {
        let s = self.lock();
        let tiles = s.comp.tiles();
        let apps = s
            .comp
            .apps()
            .iter()
            .map(|a| AppStatus {
                app: a.clone(),
                tile: tiles.iter().find(|(t, _)| t == a).map(|(_, r)| *r),
                surface: s.comp.surface_info(a).map(|(z, t)| (z, t.to_string())),
                placeholder: s.comp.placeholder(a).map(str::to_string),
                dropped: s.clients.get(a).map_or(0, |c| c.dropped),
            })
            .collect();
        Status {
            backend: self.backend.clone(),
            size: s.comp.frame().size,
            layout: s.comp.layout().clone(),
            focused: s.comp.focused().map(str::to_string),
            frames: s.stats.frames,
            apps,
        }
    }

    /// One tick of the clock: composes, answers frame requests, tells apps their new sizes,
    /// and has `backend` show what changed. Returns what it did.
    pub fn tick(&self, backend: &mut dyn Backend) -> Tick {
        let mut s = self.lock();
        let t0 = Instant::now();
        let mut tick = s.comp.tick();
        let composed = t0.elapsed();
        s.sequence += 1;
        let seq = s.sequence;
        let unflushed = std::mem::take(&mut s.unflushed);
        tick.damaged.extend(unflushed);
        for (app, size) in &tick.resized {
            if let Some(c) = s.clients.get_mut(app).filter(|c| c.attached) {
                c.resize = Some(*size);
                c.publish();
            }
        }
        for app in &tick.frames {
            if let Some(c) = s.clients.get_mut(app).filter(|c| c.attached) {
                c.frame = Some(seq);
                c.publish();
            }
        }
        if tick.damaged.is_empty() {
            s.last_shown = None;
        } else {
            s.stats.frames += 1;
            s.stats.composing += composed;
            if let Some(prev) = s.last_shown {
                sample(&mut s.stats.intervals, t0 - prev);
            }
            s.last_shown = Some(t0);
            backend.present(s.comp.frame(), &tick.damaged);
        }
        tick
    }

    /// What the display measured since start (or the last [`Display::reset_stats`]).
    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    /// Starts measuring afresh.
    pub fn reset_stats(&self) {
        let mut s = self.lock();
        s.stats = Stats::default();
        s.last_shown = None;
    }

    /// The display's clock: waits until something changed, then ticks at the next frame
    /// boundary of `backend`'s period, once the backend can take a frame (its last page
    /// flip completed; that wait is on a blocking thread). Runs until the task is dropped.
    ///
    /// It runs on the apps' workers on purpose: the frame events a tick hands out wake
    /// their apps into this worker's own queue, while input from a device, a window or the
    /// operator (other threads) wakes its app through the runtime's shared queue, which
    /// workers look at every few tasks. So a key or a click is not queued behind a whole
    /// tick's worth of apps' frame work.
    pub async fn run(self: Arc<Self>, mut backend: Box<dyn Backend>) {
        let period = backend.period();
        let mut next = tokio::time::Instant::now();
        loop {
            self.wake.notified().await;
            tokio::time::sleep_until(next).await;
            if backend.waits() {
                backend = match tokio::task::spawn_blocking(move || {
                    backend.wait_ready();
                    backend
                })
                .await
                {
                    Ok(b) => b,
                    // The wait panicked (a driver bug): the screen is gone, the apps go on.
                    Err(e) => {
                        tracing::error!(error = %e, "the display's backend failed; no more frames are shown");
                        return;
                    }
                };
            }
            self.tick(backend.as_mut());
            next = (next + period).max(tokio::time::Instant::now());
        }
    }

    /// Starts the display's clock ([`Display::run`]) on the current tokio runtime.
    pub fn start_clock(self: &Arc<Self>, backend: Box<dyn Backend>) {
        tokio::spawn(self.clone().run(backend));
    }
}

/// Why the operator's `input APP ...` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InjectError {
    /// No such app on the display.
    #[error("app `{0}` is not on the display: its manifest grants no `display`")]
    NotOnDisplay(String),
    /// Its grant does not take that kind of event.
    #[error("app `{app}` is not granted `{kind}` input: add \"{kind}\" to `input` in its manifest's `[capabilities]`")]
    NotGranted {
        /// The app.
        app: String,
        /// The kind of event.
        kind: &'static str,
    },
    /// It has no running instance to give it to.
    #[error("app `{0}` is not running: start it first")]
    NotRunning(String),
}

/// One running instance's connection to the display: its surface calls and its events.
/// Dropping it (the instance ended) frees the surface and drops waiting events.
#[derive(Debug)]
pub struct Session {
    display: Arc<Display>,
    app: String,
    grant: Grant,
    number: u64,
    ready: watch::Receiver<Ready>,
}

impl Session {
    /// The app.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// What the app may have.
    pub fn grant(&self) -> Grant {
        self.grant
    }

    /// What is waiting, to wait on (for pollables).
    pub fn ready(&self) -> watch::Receiver<Ready> {
        self.ready.clone()
    }

    /// Whether something of `which` is waiting now.
    pub fn is_ready(&self, which: impl Fn(&Ready) -> bool) -> bool {
        which(&self.ready.borrow())
    }

    /// Makes the app's surface: `width` and `height` as asked, a missing one from the
    /// app's place on the screen (or the grant), capped by the grant. The placeholder
    /// goes: the surface shows once presented.
    pub fn create_surface(&self, width: Option<u32>, height: Option<u32>, title: &str) -> Result<Size, DisplayError> {
        let title: String = title.chars().take(MAX_TITLE).collect();
        self.display.change(|s| {
            if s.comp.surface_info(&self.app).is_some() {
                return Err(DisplayError::SurfaceExists(self.app.clone()));
            }
            let fallback = s.comp.area_of(&self.app).unwrap_or(self.grant.max);
            let asked = Size::new(width.unwrap_or(fallback.w), height.unwrap_or(fallback.h));
            let size = s.comp.create_surface(&self.app, asked, self.grant.max, &title)?;
            let _ = s.comp.set_placeholder(&self.app, None);
            Ok(size)
        })
    }

    /// Frees the surface.
    pub fn destroy_surface(&self) {
        self.display.change(|s| s.comp.destroy_surface(&self.app));
    }

    /// Bytes the next draw allocates (a surface's pixels come at its first draw): what the
    /// app's memory limit must have room for. 0 once allocated, or with no surface.
    pub fn pixels_needed(&self) -> u64 {
        let s = self.display.lock();
        match s.comp.surface_info(&self.app) {
            Some((size, _)) if s.comp.surface_bytes(&self.app) == 0 => size.area() * 4,
            _ => 0,
        }
    }

    /// Draws into the surface (see [`Compositor::draw`]).
    pub fn draw(&self, rect: Rect, pixels: &[u32]) -> Result<(), DisplayError> {
        self.display.lock().comp.draw(&self.app, rect, pixels)
    }

    /// Draws bytes as apps send them (see [`Compositor::draw_bytes`]).
    pub fn draw_bytes(&self, rect: Rect, bytes: &[u8]) -> Result<(), DisplayError> {
        self.display.lock().comp.draw_bytes(&self.app, rect, bytes)
    }

    /// Presents damaged regions (see [`Compositor::present`]).
    pub fn present(&self, damage: &[Rect]) -> Result<(), DisplayError> {
        self.display.wake_after(|s| s.comp.present(&self.app, damage))
    }

    /// Asks for a frame event.
    pub fn request_frame(&self) {
        self.display.wake_after(|s| {
            let _ = s.comp.request_frame(&self.app);
        });
    }

    /// Takes something waiting for this app (with the display's samples at hand) and
    /// publishes what is still waiting.
    fn take<T>(&self, f: impl FnOnce(&mut Client, &mut Stats) -> Option<T>) -> Option<T> {
        let mut s = self.display.lock();
        let State { clients, stats, .. } = &mut *s;
        let c = clients.get_mut(&self.app)?;
        let out = f(c, stats);
        c.publish();
        out
    }

    /// The waiting frame event's sequence, taken.
    pub fn take_frame(&self) -> Option<u64> {
        self.take(|c, _| c.frame.take())
    }

    /// The newest size of the app's place since last asked, taken.
    pub fn take_resize(&self) -> Option<Size> {
        self.take(|c, _| c.resize.take())
    }

    /// The oldest waiting input event, taken.
    pub fn next_event(&self) -> Option<Event> {
        self.take(|c, stats| {
            let (e, queued) = c.events.pop_front()?;
            sample(&mut stats.input_latency, queued.elapsed());
            Some(e)
        })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.display.change(|s| {
            let Some(c) = s.clients.get_mut(&self.app).filter(|c| c.session == self.number) else {
                return;
            };
            c.attached = false;
            c.clear();
            s.comp.destroy_surface(&self.app);
        });
    }
}

#[cfg(test)]
mod tests;
