//! The display in a desktop window, for hosted mode (`vyoma run --display window`): the
//! composed frames are drawn into an X11 window, and its keyboard and pointer events go to
//! the display as a device's would (routed, the focus chord included).
//!
//! What it is for: developers seeing and using their GUI apps on their own desktop (X11,
//! or XWayland), and tests under a virtual X server (Xvfb). It speaks the X11 protocol
//! itself (`x11rb`, pure Rust): no libX11, libxcb or GPU.
//!
//! What it is not for: the image (DRM/KMS or fbdev there), or scaling: the window is the
//! screen's size, one window pixel per screen pixel.

use std::sync::Arc;

use vyoma_display::backend::Backend;
use vyoma_display::keymap::Keyboard;
use vyoma_display::{Display, Frame, Input, Phase, Rect, Size};
use x11rb::connection::{Connection as _, RequestConnection as _};
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    AtomEnum, ConnectionExt as _, CreateGCAux, CreateWindowAux, EventMask, ImageFormat, ImageOrder, PropMode,
    WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// Why the window could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// No X server to talk to.
    #[error(
        "cannot reach an X server (DISPLAY={display}): {why}; run under X11 or XWayland, or use --display headless"
    )]
    Connect {
        /// What DISPLAY said.
        display: String,
        /// Why.
        why: String,
    },
    /// The server cannot show XRGB8888 pixels as they are.
    #[error(
        "the X server's screen is {depth}-bit with {bpp} bits per pixel, {order}: the window needs 24-bit colour in 32-bit little-endian pixels"
    )]
    Format {
        /// Its depth.
        depth: u8,
        /// Its bits per pixel at that depth.
        bpp: u8,
        /// Its byte order.
        order: &'static str,
    },
    /// A request failed.
    #[error("X11 request failed: {0}")]
    Request(String),
}

fn request(e: impl std::fmt::Display) -> WindowError {
    WindowError::Request(e.to_string())
}

/// The window: a [`Backend`] the display's clock presents to.
pub struct Window {
    conn: Arc<RustConnection>,
    window: u32,
    gc: u32,
    depth: u8,
    /// Most bytes of pixels one request may carry.
    max_bytes: usize,
    presented: u64,
}

impl std::fmt::Debug for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Window")
            .field("window", &self.window)
            .field("presented", &self.presented)
            .finish_non_exhaustive()
    }
}

/// Feeds the window's keyboard and pointer to a display ([`Events::run`], on a thread of
/// its own: it blocks on the X connection).
#[derive(Debug)]
pub struct Events {
    conn: Arc<RustConnection>,
    window: u32,
}

impl Window {
    /// Opens a window of `size` titled `title` on the X server `display` names (`None`:
    /// the one `DISPLAY` names).
    pub fn open(display: Option<&str>, size: Size, title: &str) -> Result<(Window, Events), WindowError> {
        let (conn, screen) = x11rb::connect(display).map_err(|e| WindowError::Connect {
            display: display
                .map(str::to_string)
                .or_else(|| std::env::var("DISPLAY").ok())
                .unwrap_or_else(|| "unset".into()),
            why: e.to_string(),
        })?;
        let setup = conn.setup();
        let s = &setup.roots[screen];
        let bpp = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == s.root_depth)
            .map_or(0, |f| f.bits_per_pixel);
        if s.root_depth != 24 || bpp != 32 || setup.image_byte_order != ImageOrder::LSB_FIRST {
            return Err(WindowError::Format {
                depth: s.root_depth,
                bpp,
                order: if setup.image_byte_order == ImageOrder::LSB_FIRST {
                    "little-endian"
                } else {
                    "big-endian"
                },
            });
        }
        let (root, visual, depth, black) = (s.root, s.root_visual, s.root_depth, s.black_pixel);
        let window = conn.generate_id().map_err(request)?;
        let events = EventMask::EXPOSURE
            | EventMask::KEY_PRESS
            | EventMask::KEY_RELEASE
            | EventMask::BUTTON_PRESS
            | EventMask::BUTTON_RELEASE
            | EventMask::POINTER_MOTION;
        conn.create_window(
            depth,
            window,
            root,
            0,
            0,
            u16::try_from(size.w).unwrap_or(u16::MAX),
            u16::try_from(size.h).unwrap_or(u16::MAX),
            0,
            WindowClass::INPUT_OUTPUT,
            visual,
            &CreateWindowAux::new().background_pixel(black).event_mask(events),
        )
        .map_err(request)?;
        conn.change_property8(
            PropMode::REPLACE,
            window,
            AtomEnum::WM_NAME,
            AtomEnum::STRING,
            title.as_bytes(),
        )
        .map_err(request)?;
        let gc = conn.generate_id().map_err(request)?;
        conn.create_gc(gc, window, &CreateGCAux::new()).map_err(request)?;
        conn.map_window(window).map_err(request)?;
        conn.flush().map_err(request)?;
        // A PutImage request carries its header too; stay well inside the limit.
        let max_bytes = conn.maximum_request_bytes().saturating_sub(64);
        let conn = Arc::new(conn);
        Ok((
            Window {
                conn: conn.clone(),
                window,
                gc,
                depth,
                max_bytes,
                presented: 0,
            },
            Events { conn, window },
        ))
    }

    /// Draws `r` of `frame` into the window, in bands of rows that fit one request.
    fn put(&self, frame: &Frame, r: Rect) -> Result<(), WindowError> {
        let r = r.intersect(frame.size.rect());
        if r.is_empty() {
            return Ok(());
        }
        let row_bytes = r.w as usize * 4;
        let rows_per_request = (self.max_bytes / row_bytes).max(1);
        let mut data = Vec::with_capacity(row_bytes * rows_per_request.min(r.h as usize));
        let mut y = r.y as u32;
        let end = r.y as u32 + r.h;
        while y < end {
            let rows = (end - y).min(rows_per_request as u32);
            data.clear();
            for (_, _, row) in frame.rows(Rect::new(r.x, y as i32, r.w, rows)) {
                data.extend(row.iter().flat_map(|p| p.to_le_bytes()));
            }
            self.conn
                .put_image(
                    ImageFormat::Z_PIXMAP,
                    self.window,
                    self.gc,
                    r.w as u16,
                    rows as u16,
                    r.x as i16,
                    y as i16,
                    0,
                    self.depth,
                    &data,
                )
                .map_err(request)?;
            y += rows;
        }
        Ok(())
    }
}

impl Backend for Window {
    fn name(&self) -> &str {
        "window"
    }

    fn present(&mut self, frame: &Frame, damaged: &[Rect]) {
        let shown = damaged
            .iter()
            .try_for_each(|r| self.put(frame, *r))
            .and_then(|()| self.conn.flush().map_err(request));
        match shown {
            Ok(()) => self.presented += 1,
            Err(e) => tracing::warn!(error = %e, "cannot draw into the window"),
        }
    }
}

impl Events {
    /// Reads the window's events until the X connection ends, handing input to `display`
    /// (and asking it to redraw what the window lost when uncovered).
    pub fn run(self, display: Arc<Display>) {
        let mut keyboard = Keyboard::default();
        loop {
            let event = match self.conn.wait_for_event() {
                Ok(e) => e,
                Err(e) => {
                    tracing::info!(error = %e, "the window's X connection ended");
                    return;
                }
            };
            if let Some(input) = translate(&event, self.window, &mut keyboard) {
                display.input(input);
            } else if let Event::Expose(x) = event
                && x.window == self.window
            {
                display.redraw(Rect::new(x.x.into(), x.y.into(), x.width.into(), x.height.into()));
            }
        }
    }
}

/// What an X event means to the display, if anything: keys by their evdev code (X
/// keycodes are evdev's plus 8), buttons 1-3 as left, middle, right (the wheel's 4-7 are
/// not buttons here), motion as pointer moves, in window (= screen) coordinates.
pub fn translate(event: &Event, window: u32, keyboard: &mut Keyboard) -> Option<Input> {
    let button = |b: u8| match b {
        1 => Some(0),
        2 => Some(1),
        3 => Some(2),
        _ => None,
    };
    match event {
        Event::KeyPress(k) if k.event == window => keyboard.key(u16::from(k.detail).checked_sub(8)?, true),
        Event::KeyRelease(k) if k.event == window => keyboard.key(u16::from(k.detail).checked_sub(8)?, false),
        Event::ButtonPress(b) if b.event == window => Some(Input::Pointer {
            x: b.event_x.into(),
            y: b.event_y.into(),
            phase: Phase::Down,
            button: button(b.detail)?,
        }),
        Event::ButtonRelease(b) if b.event == window => Some(Input::Pointer {
            x: b.event_x.into(),
            y: b.event_y.into(),
            phase: Phase::Up,
            button: button(b.detail)?,
        }),
        Event::MotionNotify(m) if m.event == window => Some(Input::Pointer {
            x: m.event_x.into(),
            y: m.event_y.into(),
            phase: Phase::Move,
            button: 0,
        }),
        _ => None,
    }
}
