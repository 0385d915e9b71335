//! The host side of `vyoma:app/display` and `vyoma:app/input` (WIT in `wit/display.wit`):
//! each call is carried out on the instance's display [`Session`]; an app without a
//! `display` grant has none, and its calls are refused (`not-permitted`) or see nothing.
//!
//! A surface's pixels are charged to the app's memory limit and the budget all apps share
//! when its first `draw` allocates them, and released when the surface is dropped (or with
//! the instance's store). Every call is short and never waits; waiting is the pollables'.

use vyoma_display::{DisplayError, Event, Input, Phase, Ready, Rect, Session, Size};
use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::p2::{DynPollable, Pollable};

use crate::bindings::vyoma::app::display::{self as wit, CreateDesc, Error, FrameEvent, HostSurface, ResizeEvent};
use crate::bindings::vyoma::app::input::{self as win, KeyEvent, Modifiers, PointerEvent, TouchEvent};
use crate::sandbox::Limiter;

/// The interface names apps import, for telling whether an app draws.
pub const DISPLAY_INTERFACE: &str = "vyoma:app/display";

/// The host's side of an app's `surface` resource: its size (the session knows the rest).
#[derive(Debug)]
pub struct Surface {
    size: Size,
}

/// What `vyoma:app/display` and `vyoma:app/input` see of the store.
pub struct DisplayView<'a> {
    /// The instance's session, if its app may draw.
    pub session: Option<&'a Session>,
    /// Bytes of surface pixels charged to the instance now.
    pub charged: &'a mut u64,
    /// The instance's limits, which surface pixels are charged to.
    pub(crate) limiter: &'a mut Limiter,
    /// The instance's resource table.
    pub table: &'a mut ResourceTable,
}

impl std::fmt::Debug for DisplayView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DisplayView")
            .field("session", &self.session)
            .field("charged", &self.charged)
            .finish_non_exhaustive()
    }
}

/// [`HasData`] for the linker: projects the store data onto a [`DisplayView`].
pub struct HasDisplay;

impl HasData for HasDisplay {
    type Data<'a> = DisplayView<'a>;
}

fn not_permitted() -> Error {
    Error::NotPermitted(
        "this app's manifest grants no display: add `display = { max = \"WIDTHxHEIGHT\" }` to its `[capabilities]`"
            .into(),
    )
}

fn to_wit(e: DisplayError) -> Error {
    match e {
        DisplayError::SurfaceExists(_) => Error::AlreadyExists,
        other => Error::Invalid(other.to_string()),
    }
}

impl DisplayView<'_> {
    /// Frees the surface and what was charged for it.
    fn release(&mut self) {
        if let Some(s) = self.session {
            s.destroy_surface();
        }
        self.limiter.release_extra(std::mem::take(self.charged));
    }
}

impl wit::Host for DisplayView<'_> {
    fn create_surface(&mut self, desc: CreateDesc) -> wasmtime::Result<Result<Resource<Surface>, Error>> {
        let s = match self.session.ok_or_else(not_permitted) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let size = match s.create_surface(desc.width, desc.height, &desc.title) {
            Ok(size) => size,
            Err(e) => return Ok(Err(to_wit(e))),
        };
        match self.table.push(Surface { size }) {
            Ok(r) => Ok(Ok(r)),
            Err(e) => {
                // The handle budget is spent: no surface the app cannot reach.
                s.destroy_surface();
                Ok(Err(Error::Invalid(format!("cannot hand out the surface: {e}"))))
            }
        }
    }
}

impl HostSurface for DisplayView<'_> {
    fn width(&mut self, this: Resource<Surface>) -> wasmtime::Result<u32> {
        Ok(self.table.get(&this)?.size.w)
    }

    fn height(&mut self, this: Resource<Surface>) -> wasmtime::Result<u32> {
        Ok(self.table.get(&this)?.size.h)
    }

    fn draw(
        &mut self,
        this: Resource<Surface>,
        area: wit::Rect,
        pixels: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.table.get(&this)?;
        let s = match self.session.ok_or_else(not_permitted) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let rect = Rect::new(area.x, area.y, area.width, area.height);
        let want = rect.size().area() * 4;
        if pixels.len() as u64 != want {
            return Ok(Err(Error::Invalid(format!(
                "{} bytes of pixels for a {}x{} area, which needs {want} (4 bytes per pixel)",
                pixels.len(),
                area.width,
                area.height
            ))));
        }
        let needed = s.pixels_needed();
        if needed > 0 {
            if let Err(why) = self.limiter.charge_extra(needed) {
                return Ok(Err(Error::OutOfMemory(format!(
                    "the surface's first draw allocates {needed} bytes of pixels: {why}"
                ))));
            }
            *self.charged += needed;
        }
        Ok(s.draw_bytes(rect, &pixels).map_err(to_wit))
    }

    fn present(&mut self, this: Resource<Surface>, damage: Vec<wit::Rect>) -> wasmtime::Result<Result<(), Error>> {
        self.table.get(&this)?;
        let s = match self.session.ok_or_else(not_permitted) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let rects: Vec<Rect> = damage.iter().map(|r| Rect::new(r.x, r.y, r.width, r.height)).collect();
        Ok(s.present(&rects).map_err(to_wit))
    }

    fn request_frame(&mut self, this: Resource<Surface>) -> wasmtime::Result<()> {
        self.table.get(&this)?;
        if let Some(s) = self.session {
            s.request_frame();
        }
        Ok(())
    }

    fn subscribe_frame(&mut self, this: Resource<Surface>) -> wasmtime::Result<Resource<DynPollable>> {
        self.table.get(&this)?;
        self.subscribe(|r| r.frame)
    }

    fn get_frame(&mut self, this: Resource<Surface>) -> wasmtime::Result<Option<FrameEvent>> {
        self.table.get(&this)?;
        Ok(self
            .session
            .and_then(Session::take_frame)
            .map(|sequence| FrameEvent { sequence }))
    }

    fn subscribe_resize(&mut self, this: Resource<Surface>) -> wasmtime::Result<Resource<DynPollable>> {
        self.table.get(&this)?;
        self.subscribe(|r| r.resize)
    }

    fn get_resize(&mut self, this: Resource<Surface>) -> wasmtime::Result<Option<ResizeEvent>> {
        self.table.get(&this)?;
        Ok(self.session.and_then(Session::take_resize).map(|s| ResizeEvent {
            width: s.w,
            height: s.h,
        }))
    }

    fn drop(&mut self, this: Resource<Surface>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        self.release();
        Ok(())
    }
}

impl DisplayView<'_> {
    fn subscribe(&mut self, which: fn(&Ready) -> bool) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = self.table.push(ReadyPollable {
            ready: self.session.map(Session::ready),
            which,
        })?;
        wasmtime_wasi::p2::subscribe(self.table, ready)
    }
}

fn phase(p: Phase) -> win::Phase {
    match p {
        Phase::Down => win::Phase::Down,
        Phase::Move => win::Phase::Move,
        Phase::Up => win::Phase::Up,
    }
}

/// An event as the guest sees it.
fn event(e: Event) -> win::Event {
    match e {
        Event::Focus(on) => win::Event::Focus(on),
        Event::Input(Input::Key { code, text, down, mods }) => win::Event::Key(KeyEvent {
            code,
            text,
            down,
            modifiers: Modifiers {
                ctrl: mods.ctrl,
                alt: mods.alt,
                shift: mods.shift,
                meta: mods.meta,
            },
        }),
        Event::Input(Input::Pointer { x, y, phase: p, button }) => win::Event::Pointer(PointerEvent {
            x,
            y,
            phase: phase(p),
            button,
        }),
        Event::Input(Input::Touch { id, x, y, phase: p }) => win::Event::Touch(TouchEvent {
            id,
            x,
            y,
            phase: phase(p),
        }),
    }
}

impl win::Host for DisplayView<'_> {
    fn get_event(&mut self) -> Option<win::Event> {
        self.session.and_then(Session::next_event).map(event)
    }

    fn subscribe(&mut self) -> wasmtime::Result<Resource<DynPollable>> {
        DisplayView::subscribe(self, |r| r.input)
    }
}

/// A pollable ready while `which` of the session's [`Ready`] holds; never ready without a
/// session.
struct ReadyPollable {
    ready: Option<tokio::sync::watch::Receiver<Ready>>,
    which: fn(&Ready) -> bool,
}

#[wasmtime_wasi::async_trait]
impl Pollable for ReadyPollable {
    async fn ready(&mut self) {
        let which = self.which;
        // No session, or an error (the display is gone): nothing will ever be ready.
        let ok = match &mut self.ready {
            Some(rx) => rx.wait_for(which).await.is_ok(),
            None => false,
        };
        if !ok {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use vyoma_display::{Display, Grant, Layout};
    use vyoma_manifest::Limits;

    use super::*;
    use crate::budget::MemoryBudget;
    use crate::sandbox::Publish;

    fn desc() -> CreateDesc {
        CreateDesc {
            width: None,
            height: None,
            title: "t".into(),
        }
    }

    fn area(w: u32, h: u32) -> wit::Rect {
        wit::Rect {
            x: 0,
            y: 0,
            width: w,
            height: h,
        }
    }

    /// A 1 MiB memory limit and a display whose whole screen (kiosk, 400x400) is the app's.
    #[test]
    fn surface_pixels_are_charged_at_the_first_draw_and_given_back_when_dropped() {
        let d = Display::new("headless", Size::new(400, 400), Layout::Kiosk, false);
        let grant = Grant {
            max: Size::new(1000, 1000),
            keyboard: false,
            pointer: false,
            touch: false,
        };
        d.add_app("a", grant);
        let session = d.attach("a").unwrap();
        let in_use = Arc::new(AtomicU64::new(0));
        let budget = Arc::new(MemoryBudget::new(100 << 20));
        let limits = Limits {
            memory: 1 << 20,
            ..Limits::default()
        };
        let mut limiter = Limiter::new(limits, Publish::Alone(in_use.clone()), budget.clone());
        let mut table = ResourceTable::new();
        let mut charged = 0;
        let mut v = DisplayView {
            session: Some(&session),
            charged: &mut charged,
            limiter: &mut limiter,
            table: &mut table,
        };
        // 400x400 is 640 000 bytes: within the limit, charged at the first draw only.
        let s = wit::Host::create_surface(&mut v, desc()).unwrap().unwrap();
        assert_eq!(in_use.load(Ordering::Relaxed), 0);
        v.draw(Resource::new_borrow(s.rep()), area(1, 1), vec![1, 2, 3, 0])
            .unwrap()
            .unwrap();
        assert_eq!(in_use.load(Ordering::Relaxed), 640_000);
        assert_eq!(budget.used(), 640_000);
        v.draw(Resource::new_borrow(s.rep()), area(1, 1), vec![1, 2, 3, 0])
            .unwrap()
            .unwrap();
        assert_eq!(in_use.load(Ordering::Relaxed), 640_000);
        // Pixels that do not fill the area are refused with the counts.
        let e = v
            .draw(Resource::new_borrow(s.rep()), area(2, 2), vec![0; 15])
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&e, Error::Invalid(m) if m.contains("15 bytes of pixels for a 2x2 area, which needs 16")),
            "{e:?}"
        );
        // One surface at a time.
        assert!(matches!(
            wit::Host::create_surface(&mut v, desc()).unwrap(),
            Err(Error::AlreadyExists)
        ));
        HostSurface::drop(&mut v, s).unwrap();
        assert_eq!(in_use.load(Ordering::Relaxed), 0);
        assert_eq!(budget.used(), 0);
        // 600x600 (1 440 000 bytes) passes the 1 MiB limit: the draw fails, the app goes on.
        let big = wit::Host::create_surface(
            &mut v,
            CreateDesc {
                width: Some(600),
                height: Some(600),
                title: "big".into(),
            },
        )
        .unwrap()
        .unwrap();
        let e = v
            .draw(Resource::new_borrow(big.rep()), area(1, 1), vec![0; 4])
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&e, Error::OutOfMemory(m) if m.contains("allocates 1440000 bytes") && m.contains("memory limit exceeded")),
            "{e:?}"
        );
        assert_eq!(in_use.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn without_a_grant_calls_are_refused_and_input_is_empty() {
        let mut limiter = Limiter::new(
            Limits::default(),
            Publish::Alone(Arc::new(AtomicU64::new(0))),
            Arc::new(MemoryBudget::new(1 << 30)),
        );
        let mut table = ResourceTable::new();
        let mut charged = 0;
        let mut v = DisplayView {
            session: None,
            charged: &mut charged,
            limiter: &mut limiter,
            table: &mut table,
        };
        let e = wit::Host::create_surface(&mut v, desc()).unwrap().unwrap_err();
        assert!(
            matches!(&e, Error::NotPermitted(m) if m.contains("add `display = { max")),
            "{e:?}"
        );
        assert!(win::Host::get_event(&mut v).is_none());
        // The pollable is real (the guest can poll it), and never ready.
        let p = win::Host::subscribe(&mut v).unwrap();
        assert!(table.get(&p).is_ok());
    }
}
