//! The display server's core: what VyomaOS shows on its one screen and where input goes.
//!
//! What it is for: pure logic, tested without a screen. The operator's [`Layout`] places
//! apps' tiles; each app draws into its own surface and presents damaged rectangles; the
//! [`Compositor`] composes only damaged screen regions into one XRGB8888 [`Frame`], draws
//! placeholders and the status bar in a bundled font, keeps keyboard focus (with a
//! reserved chord apps never see) and routes keys, pointer and touch to apps in their own
//! coordinates; [`png`] turns frames into screenshots.
//!
//! What it is not for: the WIT interface apps import and its host side, the display
//! backends (DRM/KMS, fbdev, a desktop window) and input devices (evdev), frame pacing, or
//! charging surfaces to apps' memory limits: those drive this core from outside.

pub mod compositor;
pub mod damage;
pub mod focus;
pub mod geom;
pub mod layout;
pub mod png;
pub mod text;

pub use compositor::{Compositor, Routed, Tick};
pub use damage::Damage;
pub use focus::{Input, Mods, Phase};
pub use geom::{Rect, Size};
pub use layout::Layout;

/// Pixels of a screen or a surface, row by row, XRGB8888 (`0x00RRGGBB`).
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// Its size.
    pub size: Size,
    /// `size.w * size.h` pixels.
    pub pixels: Vec<u32>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({})", self.size)
    }
}

impl Frame {
    /// A frame of `size` filled with `colour`.
    pub fn new(size: Size, colour: u32) -> Frame {
        Frame {
            size,
            pixels: vec![colour; size.area() as usize],
        }
    }

    /// Fills `r` (clipped to the frame) with `colour`.
    pub fn fill(&mut self, r: Rect, colour: u32) {
        let r = r.intersect(self.size.rect());
        for y in r.y..r.y + r.h as i32 {
            let at = y as usize * self.size.w as usize + r.x as usize;
            self.pixels[at..at + r.w as usize].fill(colour);
        }
    }

    /// The pixel at (`x`, `y`).
    pub fn at(&self, x: u32, y: u32) -> u32 {
        self.pixels[y as usize * self.size.w as usize + x as usize]
    }
}

/// Why the display refused an app's or the operator's request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisplayError {
    /// No such app on the display.
    #[error("no app named `{0}` on the display")]
    UnknownApp(String),
    /// The app has no surface yet.
    #[error("app `{0}` has no surface: create one first")]
    NoSurface(String),
    /// A surface of no pixels.
    #[error("app `{app}` asked for a {requested} surface, {max} at most: a surface needs at least one pixel")]
    EmptySurface {
        /// The app.
        app: String,
        /// What it asked for.
        requested: Size,
        /// Its grant.
        max: Size,
    },
    /// Pixels that do not fill the rectangle they are for.
    #[error("app `{app}` drew {got} pixels into {rect}, which holds {}", rect.size().area())]
    PixelCount {
        /// The app.
        app: String,
        /// Where it drew.
        rect: Rect,
        /// How many pixels it gave.
        got: usize,
    },
    /// The layout does not show the app.
    #[error("app `{app}` is not shown by the layout `{layout}`: add it to the tiles, or change the layout")]
    Hidden {
        /// The app.
        app: String,
        /// The layout.
        layout: String,
    },
}
