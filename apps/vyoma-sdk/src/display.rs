//! Drawing on the screen (`vyoma:app/display`): a [`Canvas`] is the app's surface with its
//! pixels kept in the app, so drawing is plain memory writes and [`Canvas::present`] sends
//! only the rectangles that changed.
//!
//! The app's manifest must grant `display = { max = "WIDTHxHEIGHT" }` under
//! `[capabilities]`; the operator's layout decides where (and whether) the surface shows.
//!
//! ```no_run
//! use vyoma_sdk::display::{Canvas, Rect};
//!
//! // As large as the app's place on the screen.
//! let mut c = Canvas::new("hello").unwrap();
//! c.clear(0x00_20_40_80);
//! c.text(10, 10, "hello, screen", 0x00_ff_ff_ff);
//! c.present_all().unwrap();
//! loop {
//!     c.wait_frame().unwrap();
//!     // ... draw, then present what changed ...
//! }
//! ```

use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster, get_raster_width};

use crate::bindings::vyoma::app::display as wit;
pub use crate::bindings::vyoma::app::display::{Error, Rect};

/// Height of a line of [`Canvas::text`], in pixels.
pub const LINE: u32 = RasterHeight::Size16 as u32;

/// Width of one character of [`Canvas::text`], in pixels (the font is monospaced).
pub fn char_width() -> u32 {
    get_raster_width(FontWeight::Regular, RasterHeight::Size16) as u32
}

/// A rectangle.
pub fn rect(x: i32, y: i32, width: u32, height: u32) -> Rect {
    Rect { x, y, width, height }
}

/// The app's surface and its pixels (XRGB8888, `0x00RRGGBB`, row by row).
pub struct Canvas {
    /// None only after a failed [`Canvas::resize`].
    surface: Option<wit::Surface>,
    title: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height` pixels.
    pub pixels: Vec<u32>,
}

impl Canvas {
    /// A surface as large as the app's place on the screen (or its grant, when not shown).
    pub fn new(title: &str) -> Result<Canvas, Error> {
        Canvas::make(None, None, title)
    }

    /// A surface of `width` x `height` (capped by the grant).
    pub fn with_size(width: u32, height: u32, title: &str) -> Result<Canvas, Error> {
        Canvas::make(Some(width), Some(height), title)
    }

    fn make(width: Option<u32>, height: Option<u32>, title: &str) -> Result<Canvas, Error> {
        let surface = wit::create_surface(&wit::CreateDesc {
            width,
            height,
            title: title.to_string(),
        })?;
        let (w, h) = (surface.width(), surface.height());
        Ok(Canvas {
            surface: Some(surface),
            title: title.to_string(),
            width: w,
            height: h,
            pixels: vec![0; w as usize * h as usize],
        })
    }

    /// Makes the surface `width` x `height` (e.g. after a [`Canvas::resized`]); the pixels
    /// are cleared to black. Present everything afterwards.
    pub fn resize(&mut self, width: u32, height: u32) -> Result<(), Error> {
        // One surface per app: the old one goes first.
        self.surface = None;
        *self = Canvas::make(Some(width), Some(height), &self.title)?;
        Ok(())
    }

    fn surface(&self) -> Result<&wit::Surface, Error> {
        self.surface
            .as_ref()
            .ok_or_else(|| Error::Invalid("the canvas has no surface: its last resize failed".into()))
    }

    /// The pixel at (`x`, `y`), if inside.
    pub fn get(&self, x: i32, y: i32) -> Option<u32> {
        self.index(x, y).map(|i| self.pixels[i])
    }

    fn index(&self, x: i32, y: i32) -> Option<usize> {
        (x >= 0 && y >= 0 && (x as u32) < self.width && (y as u32) < self.height)
            .then(|| y as usize * self.width as usize + x as usize)
    }

    /// Sets the pixel at (`x`, `y`), if inside.
    pub fn set(&mut self, x: i32, y: i32, colour: u32) {
        if let Some(i) = self.index(x, y) {
            self.pixels[i] = colour;
        }
    }

    /// Fills `r` (clipped) with `colour`.
    pub fn fill(&mut self, r: Rect, colour: u32) {
        let Some(r) = self.clip(r) else { return };
        let (x, w) = (r.x as usize, r.width as usize);
        for y in r.y as usize..r.y as usize + r.height as usize {
            let row = y * self.width as usize + x;
            self.pixels[row..row + w].fill(colour);
        }
    }

    /// Fills the whole canvas.
    pub fn clear(&mut self, colour: u32) {
        self.pixels.fill(colour);
    }

    /// Draws `text` (Basic Latin; others as `?`) with its top-left corner at (`x`, `y`),
    /// blended over what is there; returns the rectangle it covers.
    pub fn text(&mut self, x: i32, y: i32, text: &str, colour: u32) -> Rect {
        self.text_scaled(x, y, text, colour, 1)
    }

    /// Like [`Canvas::text`], each pixel of the font drawn as a `scale` x `scale` block.
    pub fn text_scaled(&mut self, x: i32, y: i32, text: &str, colour: u32, scale: u32) -> Rect {
        let scale = scale.max(1);
        let cw = (char_width() * scale) as i32;
        let mut at = x;
        for c in text.chars() {
            let g = get_raster(c, FontWeight::Regular, RasterHeight::Size16)
                .or_else(|| get_raster('?', FontWeight::Regular, RasterHeight::Size16));
            if let Some(g) = g {
                for (gy, row) in g.raster().iter().enumerate() {
                    for (gx, &a) in row.iter().enumerate() {
                        if a == 0 {
                            continue;
                        }
                        for sy in 0..scale {
                            for sx in 0..scale {
                                let px = at + (gx as u32 * scale + sx) as i32;
                                let py = y + (gy as u32 * scale + sy) as i32;
                                if let Some(i) = self.index(px, py) {
                                    self.pixels[i] = blend(colour, self.pixels[i], a);
                                }
                            }
                        }
                    }
                }
            }
            at = at.saturating_add(cw);
        }
        rect(x, y, (at - x).max(0) as u32, LINE * scale)
    }

    /// Shows the pixels in `damage` at the display's next frame: each rectangle (clipped)
    /// is copied to the surface, then presented.
    pub fn present(&mut self, damage: &[Rect]) -> Result<(), Error> {
        let mut shown = Vec::with_capacity(damage.len());
        let mut bytes = Vec::new();
        for r in damage {
            let Some(r) = self.clip(*r) else { continue };
            let (x, w) = (r.x as usize, r.width as usize);
            let first = r.y as usize * self.width as usize;
            let rows = first..first + r.height as usize * self.width as usize;
            // Whole rows are one run of the canvas: handed over as they are (wasm is
            // little-endian, the order the display reads). Otherwise each row's part.
            let run: &[u8] = if w == self.width as usize {
                bytemuck::cast_slice(&self.pixels[rows])
            } else {
                bytes.clear();
                for row in self.pixels[rows].chunks_exact(self.width as usize) {
                    bytes.extend_from_slice(bytemuck::cast_slice(&row[x..x + w]));
                }
                &bytes
            };
            self.surface()?.draw(r, run)?;
            shown.push(r);
        }
        self.surface()?.present(&shown)
    }

    /// Shows every pixel.
    pub fn present_all(&mut self) -> Result<(), Error> {
        self.present(&[rect(0, 0, self.width, self.height)])
    }

    fn clip(&self, r: Rect) -> Option<Rect> {
        let x0 = (r.x as i64).clamp(0, self.width as i64);
        let y0 = (r.y as i64).clamp(0, self.height as i64);
        let x1 = (r.x as i64 + r.width as i64).clamp(0, self.width as i64);
        let y1 = (r.y as i64 + r.height as i64).clamp(0, self.height as i64);
        (x1 > x0 && y1 > y0).then(|| rect(x0 as i32, y0 as i32, (x1 - x0) as u32, (y1 - y0) as u32))
    }

    /// Asks for a frame event: the display answers at its next frame while the app is
    /// visible.
    pub fn request_frame(&self) -> Result<(), Error> {
        self.surface()?.request_frame();
        Ok(())
    }

    /// A pollable ready when a frame event waits (for [`crate::poll::poll`] beside other
    /// things).
    pub fn subscribe_frame(&self) -> Result<crate::poll::Pollable, Error> {
        Ok(self.surface()?.subscribe_frame())
    }

    /// The waiting frame event's sequence number, if any (taken).
    pub fn take_frame(&self) -> Option<u64> {
        self.surface.as_ref()?.get_frame().map(|f| f.sequence)
    }

    /// Requests a frame and waits for it: paces an animation to the display.
    pub fn wait_frame(&self) -> Result<u64, Error> {
        self.request_frame()?;
        loop {
            if let Some(s) = self.take_frame() {
                return Ok(s);
            }
            self.subscribe_frame()?.block();
        }
    }

    /// A pollable ready when the app's place on the screen changed size.
    pub fn subscribe_resize(&self) -> Result<crate::poll::Pollable, Error> {
        Ok(self.surface()?.subscribe_resize())
    }

    /// The new size of the app's place on the screen, if it changed since last asked.
    pub fn resized(&self) -> Option<(u32, u32)> {
        self.surface.as_ref()?.get_resize().map(|r| (r.width, r.height))
    }
}

/// `fg` over `bg` by coverage `a` (0..=255), per channel.
fn blend(fg: u32, bg: u32, a: u8) -> u32 {
    let a = a as u32;
    let mix = |s: u32| ((((fg >> s) & 0xff) * a + ((bg >> s) & 0xff) * (255 - a) + 127) / 255) << s;
    mix(16) | mix(8) | mix(0)
}

/// Input routed to the app (`vyoma:app/input`): keys while it has the focus, pointer and
/// touch over its surface, each kind as its manifest grants (`input = ["keyboard",
/// "pointer", "touch"]` under `[capabilities]`).
pub mod input {
    use crate::bindings::vyoma::app::input as wit;
    pub use crate::bindings::vyoma::app::input::{Event, KeyEvent, Modifiers, Phase, PointerEvent, TouchEvent};

    /// The oldest waiting event, if any. Never blocks.
    pub fn next() -> Option<Event> {
        wit::get_event()
    }

    /// A pollable ready when an event waits.
    pub fn subscribe() -> crate::poll::Pollable {
        wit::subscribe()
    }
}
