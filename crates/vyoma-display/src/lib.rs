//! The display server's core: what VyomaOS shows on its one screen and where input goes.
//!
//! What it is for: pure logic, tested without a screen. The operator's [`Layout`] places
//! apps' tiles; each app draws into its own surface and presents damaged rectangles; the
//! [`Compositor`] composes only damaged screen regions into one XRGB8888 [`Frame`], draws
//! placeholders and the status bar in a bundled font, keeps keyboard focus (with a
//! reserved chord apps never see) and routes keys, pointer and touch to apps in their own
//! coordinates; [`png`] turns frames into screenshots.
//!
//! The [`server`] shares the compositor between the apps' sessions, the operator and the
//! display's clock (frame pacing), on tokio's sync primitives; [`backend`] is the trait
//! every screen implements, with the headless one.
//!
//! What it is not for: the WIT interface apps import and its host side, the device
//! backends (DRM/KMS, fbdev, a desktop window) and input devices (evdev), or charging
//! surfaces to apps' memory limits: those drive this crate from outside.

pub mod backend;
pub mod compositor;
pub mod cursor;
pub mod damage;
pub mod focus;
pub mod geom;
pub mod keymap;
pub mod layout;
pub mod png;
pub mod server;
pub mod text;

pub use compositor::{Compositor, Routed, Tick};
pub use damage::Damage;
pub use focus::{Input, Mods, Phase};
pub use geom::{Rect, Size};
pub use layout::Layout;
pub use server::{Display, Event, Grant, InjectError, Ready, Session, Stats};

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

    /// The rows of `r` clipped to the frame, top to bottom: where each starts (x, y) and
    /// its pixels. What a backend copies to its screen.
    pub fn rows(&self, r: Rect) -> impl Iterator<Item = (usize, usize, &[u32])> + '_ {
        let r = r.intersect(self.size.rect());
        let (x, w, stride) = (r.x as usize, r.w as usize, self.size.w as usize);
        (r.y as usize..r.y as usize + r.h as usize).map(move |y| (x, y, &self.pixels[y * stride + x..][..w]))
    }

    /// Fills `r` (clipped to the frame) with `colour`.
    pub fn fill(&mut self, r: Rect, colour: u32) {
        let r = r.intersect(self.size.rect());
        for y in r.y..r.y + r.h as i32 {
            let at = y as usize * self.size.w as usize + r.x as usize;
            self.pixels[at..at + r.w as usize].fill(colour);
        }
    }

    /// Fills `outer` (clipped to the frame) with `colour` except where `inner` is: at most
    /// four strips around it.
    pub fn fill_except(&mut self, outer: Rect, inner: Rect, colour: u32) {
        let inner = inner.intersect(outer);
        if inner.is_empty() {
            self.fill(outer, colour);
            return;
        }
        let (ox1, oy1) = (outer.right(), outer.bottom());
        let (ix1, iy1) = (inner.right(), inner.bottom());
        let strip = |x0: i64, y0: i64, x1: i64, y1: i64| {
            Rect::new(x0 as i32, y0 as i32, (x1 - x0).max(0) as u32, (y1 - y0).max(0) as u32)
        };
        let (ox0, oy0, ix0, iy0) = (outer.x as i64, outer.y as i64, inner.x as i64, inner.y as i64);
        for r in [
            strip(ox0, oy0, ox1, iy0),
            strip(ox0, iy1, ox1, oy1),
            strip(ox0, iy0, ix0, iy1),
            strip(ix1, iy0, ox1, iy1),
        ] {
            self.fill(r, colour);
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
    /// The app has a surface already (one per app).
    #[error("app `{0}` already has a surface: drop it before making another")]
    SurfaceExists(String),
    /// The layout does not show the app.
    #[error("app `{app}` is not shown by the layout `{layout}`: add it to the tiles, or change the layout")]
    Hidden {
        /// The app.
        app: String,
        /// The layout.
        layout: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_the_clipped_rect_top_to_bottom() {
        let mut f = Frame::new(Size::new(4, 3), 0);
        for (i, p) in f.pixels.iter_mut().enumerate() {
            *p = i as u32;
        }
        let rows: Vec<_> = f.rows(Rect::new(2, 1, 9, 9)).collect();
        assert_eq!(rows, [(2, 1, &[6, 7][..]), (2, 2, &[10, 11][..])]);
        assert_eq!(f.rows(Rect::new(-5, -5, 2, 2)).count(), 0, "off the frame");
        assert_eq!(f.rows(Rect::new(1, 1, 0, 2)).count(), 0, "empty");
    }

    #[test]
    fn fill_except_leaves_exactly_the_inner_rect() {
        for inner in [
            Rect::new(2, 2, 3, 3),
            Rect::new(-5, -5, 8, 8),
            Rect::new(6, 0, 10, 10),
            Rect::new(50, 50, 1, 1),
            Rect::new(0, 0, 8, 8),
        ] {
            let mut f = Frame::new(Size::new(8, 8), 0);
            let outer = Rect::new(1, 1, 6, 6);
            f.fill_except(outer, inner, 9);
            for y in 0..8 {
                for x in 0..8 {
                    let want = outer.contains(x, y) && !inner.intersect(outer).contains(x, y);
                    assert_eq!(f.at(x as u32, y as u32) == 9, want, "{inner} at {x},{y}");
                }
            }
        }
    }
}
