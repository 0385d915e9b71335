//! The compositor: every app's surface, the operator's layout, focus, input routing and
//! composition of damaged screen regions into one frame.
//!
//! Surfaces are the apps'; everything else is the compositor's. An app draws into its own
//! surface (pixels in its own coordinates) and presents it with the rectangles it
//! changed; only those, where its tile is visible, are composed again. A surface's pixels
//! are allocated at its first draw, so an app that made a surface and never drew holds
//! none, and a hidden app keeps its last pixels without costing the screen anything.
//! Drawn pixels become visible no later than the next present.
//!
//! The display's clock (a page flip, or 60 Hz without one) calls [`Compositor::tick`]: it
//! composes what is damaged, tells apps whose visible area changed size, and answers the
//! frame requests of visible apps only; a hidden app's request waits until it is shown, so
//! hidden and idle apps cost nothing per frame, and a tick with nothing damaged and nothing
//! requested does nothing.
//!
//! In grid and tile layouts each tile has a two-pixel frame (the accent colour for the
//! focused app) and the surface sits inside it, clipped; kiosk shows the focused surface
//! with no frame. A tile whose app is not drawing (it exited, trapped, is restarting)
//! shows a placeholder the supervisor sets, in the compositor's own font.

use std::collections::{BTreeMap, BTreeSet};

use crate::damage::Damage;
use crate::focus::{Focus, Input, Phase, is_focus_chord};
use crate::geom::{Rect, Size};
use crate::layout::{Layout, arrange};
use crate::{DisplayError, Frame, cursor, text};

/// Height of the status bar, when shown.
pub const BAR_HEIGHT: u32 = 20;
/// Width of a tile's frame in grid and tile layouts.
pub const FRAME: u32 = 2;
/// Colours (XRGB8888).
pub mod colour {
    /// Behind everything.
    pub const BACKGROUND: u32 = 0x0018_1818;
    /// A tile's frame.
    pub const FRAME: u32 = 0x0040_4040;
    /// The focused tile's frame, and the focused name in the bar.
    pub const ACCENT: u32 = 0x0030_8cff;
    /// Behind a placeholder's text.
    pub const PLACEHOLDER: u32 = 0x0028_2828;
    /// Text.
    pub const TEXT: u32 = 0x00e8_e8e8;
    /// An app's name in the bar while it shows a placeholder.
    pub const TROUBLE: u32 = 0x00ff_6050;
    /// The bar.
    pub const BAR: u32 = 0x0000_0000;
}

/// Bytes of one pixel (XRGB8888).
const PIXEL: u64 = 4;

/// One app's drawing surface.
#[derive(Debug, Clone)]
struct Surface {
    size: Size,
    title: String,
    /// Allocated at the first draw.
    pixels: Option<Vec<u32>>,
}

#[derive(Debug, Clone, Default)]
struct App {
    surface: Option<Surface>,
    placeholder: Option<String>,
}

/// What the compositor decided to do with an input event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// Deliver to this app, in its surface's coordinates.
    App {
        /// The app.
        app: String,
        /// The event, coordinates relative to the surface's top-left pixel.
        event: Input,
    },
    /// The focus chord: focus moved to this app (or to none).
    FocusCycled(Option<String>),
    /// Nobody gets it (outside every surface, or the chord's key-up).
    Nowhere,
}

/// What one tick of the display's clock did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    /// Screen regions composed again (for the backend to flush); empty: show nothing new.
    pub damaged: Vec<Rect>,
    /// Visible apps whose area changed size since they were last told (the first time
    /// they are shown, after a layout change): they may want a surface of that size.
    pub resized: Vec<(String, Size)>,
    /// Apps whose frame request is answered now: draw the next frame.
    pub frames: Vec<String>,
}

/// The display's state. Pure: backends show [`Compositor::frame`] and feed input; the
/// supervisor adds apps, sets placeholders and carries the apps' calls.
#[derive(Debug, Clone)]
pub struct Compositor {
    frame: Frame,
    layout: Layout,
    bar: bool,
    /// In the operator's order (the order apps were added).
    order: Vec<String>,
    apps: BTreeMap<String, App>,
    focus: Focus,
    damage: Damage,
    /// Keys whose key-down was the compositor's: their key-up goes nowhere.
    swallowed: BTreeSet<String>,
    /// Who gets a pointer drag or a finger until it is lifted (`None`: the pointer).
    grabs: BTreeMap<Option<u32>, String>,
    /// Apps waiting for their next frame.
    frame_requests: BTreeSet<String>,
    /// The area size each app was last told.
    told: BTreeMap<String, Size>,
    /// Where the drawn pointer is, when there is one (a mouse is plugged in).
    cursor: Option<(i32, i32)>,
}

impl Compositor {
    /// A screen of `size` under `layout`, with a status bar if `bar`; everything damaged.
    pub fn new(size: Size, layout: Layout, bar: bool) -> Compositor {
        let mut c = Compositor {
            frame: Frame::new(size, colour::BACKGROUND),
            layout,
            bar,
            order: Vec::new(),
            apps: BTreeMap::new(),
            focus: Focus::default(),
            damage: Damage::new(),
            swallowed: BTreeSet::new(),
            grabs: BTreeMap::new(),
            frame_requests: BTreeSet::new(),
            told: BTreeMap::new(),
            cursor: None,
        };
        c.damage_all();
        c
    }

    fn screen(&self) -> Rect {
        self.frame.size.rect()
    }

    fn damage_all(&mut self) {
        let s = self.screen();
        self.damage.add(s, s);
    }

    /// Composes `r` (clipped to the screen) again at the next compose, though nothing in
    /// it changed: a backend lost those pixels (a window uncovered).
    pub fn redraw(&mut self, r: Rect) {
        let s = self.screen();
        self.damage.add(r.intersect(s), s);
    }

    /// Draws the pointer (`on`: a mouse moves it, and nothing else would show where), from
    /// the screen's middle (where it is, if it is drawn already); or stops drawing it.
    pub fn show_cursor(&mut self, on: bool) {
        let s = self.screen();
        let now = match (on, self.cursor) {
            (true, Some(at)) => Some(at),
            (true, None) => Some((s.w as i32 / 2, s.h as i32 / 2)),
            (false, _) => None,
        };
        for (x, y) in self.cursor.into_iter().chain(now) {
            self.redraw(cursor::rect(x, y));
        }
        self.cursor = now;
    }

    /// The drawn pointer's position, if it is drawn.
    pub fn cursor(&self) -> Option<(i32, i32)> {
        self.cursor
    }

    /// Moves the drawn pointer (if drawn) to (`x`, `y`), kept on the screen.
    fn move_cursor(&mut self, x: i32, y: i32) {
        let Some(old) = self.cursor else { return };
        let s = self.screen();
        let new = (x.clamp(0, s.w as i32 - 1), y.clamp(0, s.h as i32 - 1));
        if new != old {
            self.redraw(cursor::rect(old.0, old.1));
            self.redraw(cursor::rect(new.0, new.1));
            self.cursor = Some(new);
        }
    }

    /// Where tiles go: the screen below the bar.
    fn area(&self) -> Rect {
        let s = self.screen();
        if self.bar {
            let h = BAR_HEIGHT.min(s.h);
            Rect::new(0, h as i32, s.w, s.h - h)
        } else {
            s
        }
    }

    /// Each visible app's tile, in the operator's order.
    pub fn tiles(&self) -> Vec<(String, Rect)> {
        let names: Vec<&str> = self.order.iter().map(String::as_str).collect();
        arrange(&self.layout, self.area(), &names, self.focus.current())
            .into_iter()
            .map(|(a, r)| (a.to_string(), r))
            .collect()
    }

    /// Where `app`'s surface shows: its tile inside the frame (grid and tiles).
    fn content(&self, tile: Rect) -> Rect {
        if self.layout == Layout::Kiosk || tile.w <= 2 * FRAME || tile.h <= 2 * FRAME {
            return tile;
        }
        Rect::new(
            tile.x + FRAME as i32,
            tile.y + FRAME as i32,
            tile.w - 2 * FRAME,
            tile.h - 2 * FRAME,
        )
    }

    fn tile_of(&self, app: &str) -> Option<Rect> {
        self.tiles().into_iter().find(|(a, _)| a == app).map(|(_, r)| r)
    }

    /// The size of `app`'s place on the screen (inside its tile's frame), if it is shown.
    pub fn area_of(&self, app: &str) -> Option<Size> {
        self.tile_of(app).map(|t| self.content(t).size())
    }

    /// The apps on the display, in the operator's order.
    pub fn apps(&self) -> &[String] {
        &self.order
    }

    /// `app`'s surface size and title, if it has a surface.
    pub fn surface_info(&self, app: &str) -> Option<(Size, &str)> {
        let s = self.apps.get(app)?.surface.as_ref()?;
        Some((s.size, s.title.as_str()))
    }

    /// The placeholder `app`'s tile shows, if any.
    pub fn placeholder(&self, app: &str) -> Option<&str> {
        self.apps.get(app)?.placeholder.as_deref()
    }

    /// Whether `app`'s tile is on the screen now (so its frames are worth drawing).
    pub fn is_visible(&self, app: &str) -> bool {
        self.tile_of(app).is_some()
    }

    fn app(&self, app: &str) -> Result<&App, DisplayError> {
        self.apps
            .get(app)
            .ok_or_else(|| DisplayError::UnknownApp(app.to_string()))
    }

    fn app_mut(&mut self, app: &str) -> Result<&mut App, DisplayError> {
        self.apps
            .get_mut(app)
            .ok_or_else(|| DisplayError::UnknownApp(app.to_string()))
    }

    /// Damages `app`'s whole tile, if it is visible.
    fn damage_tile(&mut self, app: &str) {
        if let Some(t) = self.tile_of(app) {
            let s = self.screen();
            self.damage.add(t, s);
        }
        if self.bar {
            let s = self.screen();
            self.damage.add(Rect::new(0, 0, s.w, BAR_HEIGHT), s);
        }
    }

    /// After anything that may move tiles or focus: focus only what is shown (kiosk:
    /// anything), and redraw everything.
    fn rearranged(&mut self) {
        let shown = self.focusable();
        let fallback = shown.first().cloned();
        self.focus.keep(|a| shown.iter().any(|s| s == a), fallback.as_deref());
        self.damage_all();
    }

    /// The apps that may have focus, in display order: every app in kiosk (focusing one
    /// shows it) and grid, the tiled ones under tiles.
    fn focusable(&self) -> Vec<String> {
        match &self.layout {
            Layout::Kiosk | Layout::Grid => self.order.clone(),
            Layout::Tiles(_) => self.tiles().into_iter().map(|(a, _)| a).collect(),
        }
    }

    /// Adds an app (at the end of the operator's order). Adding one twice changes nothing.
    pub fn add_app(&mut self, app: &str) {
        if self.apps.contains_key(app) {
            return;
        }
        self.apps.insert(app.to_string(), App::default());
        self.order.push(app.to_string());
        self.rearranged();
    }

    /// Removes an app and frees its surface; focus goes back to the app before it.
    pub fn remove_app(&mut self, app: &str) {
        if self.apps.remove(app).is_none() {
            return;
        }
        self.order.retain(|a| a != app);
        self.focus.forget(app);
        self.grabs.retain(|_, a| a != app);
        self.frame_requests.remove(app);
        self.told.remove(app);
        self.rearranged();
    }

    /// Changes the layout (the operator's call).
    pub fn set_layout(&mut self, layout: Layout) {
        self.layout = layout;
        self.rearranged();
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Focuses `app` (the operator's `focus APP`, or a click).
    pub fn focus(&mut self, app: &str) -> Result<(), DisplayError> {
        self.app(app)?;
        if !self.focusable().iter().any(|a| a == app) {
            return Err(DisplayError::Hidden {
                app: app.to_string(),
                layout: self.layout.to_string(),
            });
        }
        if self.focus.current() != Some(app) {
            self.focus.set(app);
            self.damage_all();
        }
        Ok(())
    }

    /// The focused app.
    pub fn focused(&self) -> Option<&str> {
        self.focus.current()
    }

    /// Takes the focus from `app` (it stopped drawing: it trapped, exited, is restarting):
    /// to the app focused before it, or else the first other app that may have focus.
    /// Kiosk then shows that app.
    pub fn unfocus(&mut self, app: &str) {
        if self.focused() != Some(app) {
            return;
        }
        let others: Vec<String> = self.focusable().into_iter().filter(|a| a != app).collect();
        self.focus.forget(app);
        self.focus
            .keep(|a| others.iter().any(|o| o == a), others.first().map(String::as_str));
        if self.focused().is_none() {
            // Nobody else to focus: it keeps the focus (and its tile).
            self.focus.set(app);
        }
        self.damage_all();
    }

    /// Focuses the next app on the screen (the focus chord).
    pub fn cycle_focus(&mut self) {
        let order = self.focusable();
        let names: Vec<&str> = order.iter().map(String::as_str).collect();
        let before = self.focus.current().map(str::to_string);
        self.focus.cycle(&names);
        if self.focus.current() != before.as_deref() {
            self.damage_all();
        }
    }

    /// Gives `app` a surface of `requested` size, capped by `max` (its manifest's grant);
    /// returns the size it got. A surface it had is replaced (its pixels freed).
    pub fn create_surface(&mut self, app: &str, requested: Size, max: Size, title: &str) -> Result<Size, DisplayError> {
        let size = requested.min(max);
        if size.area() == 0 {
            return Err(DisplayError::EmptySurface {
                app: app.to_string(),
                requested,
                max,
            });
        }
        let a = self.app_mut(app)?;
        a.surface = Some(Surface {
            size,
            title: title.to_string(),
            pixels: None,
        });
        self.damage_tile(app);
        Ok(size)
    }

    /// Frees `app`'s surface (it ended, or asked).
    pub fn destroy_surface(&mut self, app: &str) {
        if let Some(a) = self.apps.get_mut(app)
            && a.surface.take().is_some()
        {
            self.damage_tile(app);
        }
    }

    /// Bytes `app`'s surface holds now (0 until its first draw): what its memory limit is
    /// charged for it.
    pub fn surface_bytes(&self, app: &str) -> u64 {
        self.apps
            .get(app)
            .and_then(|a| a.surface.as_ref())
            .filter(|s| s.pixels.is_some())
            .map_or(0, |s| s.size.area() * PIXEL)
    }

    /// Writes `pixels` (rows of `rect.w`, XRGB8888) into `app`'s surface at `rect`, clipped
    /// to the surface. Visible after the next [`Compositor::present`] of that region.
    pub fn draw(&mut self, app: &str, rect: Rect, pixels: &[u32]) -> Result<(), DisplayError> {
        self.draw_rows(app, rect, pixels.len(), |dst, from| {
            dst.copy_from_slice(&pixels[from..from + dst.len()]);
        })
    }

    /// [`Compositor::draw`] from bytes as apps send them: four per pixel, little-endian
    /// (blue, green, red, unused). No copy but the one into the surface.
    pub fn draw_bytes(&mut self, app: &str, rect: Rect, bytes: &[u8]) -> Result<(), DisplayError> {
        if !bytes.len().is_multiple_of(4) {
            return Err(DisplayError::PixelCount {
                app: app.to_string(),
                rect,
                got: bytes.len() / 4,
            });
        }
        self.draw_rows(app, rect, bytes.len() / 4, |dst, from| {
            let src = &bytes[from * 4..(from + dst.len()) * 4];
            for (d, s) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *d = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            }
        })
    }

    /// Checks `count` pixels fill `rect`, then has `copy` fill each clipped row of the
    /// surface from the pixel at that index of the source.
    fn draw_rows(
        &mut self,
        app: &str,
        rect: Rect,
        count: usize,
        mut copy: impl FnMut(&mut [u32], usize),
    ) -> Result<(), DisplayError> {
        if count as u64 != rect.size().area() {
            return Err(DisplayError::PixelCount {
                app: app.to_string(),
                rect,
                got: count,
            });
        }
        let a = self.app_mut(app)?;
        let s = a
            .surface
            .as_mut()
            .ok_or_else(|| DisplayError::NoSurface(app.to_string()))?;
        let size = s.size;
        let buf = s.pixels.get_or_insert_with(|| vec![0; size.area() as usize]);
        let clip = rect.intersect(size.rect());
        // `clip` lies inside both; offsets into `rect` are computed wide, as `rect` may
        // start far off the surface.
        for y in clip.y..clip.y + clip.h as i32 {
            let (dy, dx) = (y as i64 - rect.y as i64, clip.x as i64 - rect.x as i64);
            let src = dy as usize * rect.w as usize + dx as usize;
            let dst = y as usize * size.w as usize + clip.x as usize;
            copy(&mut buf[dst..dst + clip.w as usize], src);
        }
        Ok(())
    }

    /// `app` presents the regions of its surface it changed: where visible, they are
    /// composed at the next [`Compositor::compose`].
    pub fn present(&mut self, app: &str, damage: &[Rect]) -> Result<(), DisplayError> {
        let a = self.app(app)?;
        let size = a
            .surface
            .as_ref()
            .ok_or_else(|| DisplayError::NoSurface(app.to_string()))?
            .size;
        // A placeholder covers the surface: nothing of it shows.
        if a.placeholder.is_some() {
            return Ok(());
        }
        let Some(tile) = self.tile_of(app) else {
            return Ok(());
        };
        let content = self.content(tile);
        let s = self.screen();
        for r in damage {
            let on_screen = r.intersect(size.rect()).offset(content.x, content.y).intersect(content);
            self.damage.add(on_screen, s);
        }
        Ok(())
    }

    /// Shows `text` in `app`'s tile instead of its surface (`None`: the surface again).
    pub fn set_placeholder(&mut self, app: &str, text: Option<&str>) -> Result<(), DisplayError> {
        let a = self.app_mut(app)?;
        let new = text.map(str::to_string);
        if a.placeholder != new {
            a.placeholder = new;
            self.damage_tile(app);
        }
        Ok(())
    }

    /// Decides who gets `input`: the focused app for keys, the app under the pointer or
    /// finger (or the one a drag started in) for pointer and touch. A press focuses the
    /// app it lands on. The focus chord is the compositor's.
    pub fn route(&mut self, input: Input) -> Routed {
        match input {
            Input::Key { code, text, down, mods } => {
                if down && is_focus_chord(&code, mods) {
                    self.swallowed.insert(code);
                    self.cycle_focus();
                    return Routed::FocusCycled(self.focused().map(str::to_string));
                }
                if !down && self.swallowed.remove(&code) {
                    return Routed::Nowhere;
                }
                match self.focused() {
                    Some(app) => Routed::App {
                        app: app.to_string(),
                        event: Input::Key { code, text, down, mods },
                    },
                    None => Routed::Nowhere,
                }
            }
            Input::Pointer { x, y, phase, button } => {
                self.move_cursor(x, y);
                self.route_point(None, x, y, phase, |x, y| Input::Pointer { x, y, phase, button })
            }
            Input::Touch { id, x, y, phase } => {
                self.route_point(Some(id), x, y, phase, |x, y| Input::Touch { id, x, y, phase })
            }
        }
    }

    fn route_point(
        &mut self,
        grab: Option<u32>,
        x: i32,
        y: i32,
        phase: Phase,
        make: impl Fn(i32, i32) -> Input,
    ) -> Routed {
        let held = self.grabs.get(&grab).cloned();
        let target = match held {
            Some(app) => self.tile_of(&app).map(|t| (app, self.content(t))),
            None => self
                .tiles()
                .into_iter()
                .map(|(a, t)| (a, self.content(t)))
                .find(|(_, c)| c.contains(x, y)),
        };
        if phase == Phase::Up {
            self.grabs.remove(&grab);
        }
        let Some((app, content)) = target else {
            return Routed::Nowhere;
        };
        if phase == Phase::Down {
            self.grabs.insert(grab, app.clone());
            let _ = self.focus(&app);
        }
        // A drag may go far off the surface: coordinates saturate rather than wrap.
        Routed::App {
            app,
            event: make(x.saturating_sub(content.x), y.saturating_sub(content.y)),
        }
    }

    /// Draws every damaged region of the screen again and returns them (empty: nothing
    /// changed, nothing to show). Each pixel of a region is written once: tile frames and
    /// background only where no surface covers them.
    pub fn compose(&mut self) -> Vec<Rect> {
        let damaged = self.damage.take();
        if damaged.is_empty() {
            return damaged;
        }
        let tiles = self.tiles();
        let focused = self.focused().map(str::to_string);
        let area = self.area();
        for r in &damaged {
            if self.bar {
                self.draw_bar(*r, focused.as_deref());
            }
            let in_area = r.intersect(area);
            // Tiles never overlap: if their parts of `r` add up to less than it, some of
            // it is bare background (an empty grid cell, no app to show).
            let covered: u64 = tiles.iter().map(|(_, t)| t.intersect(in_area).size().area()).sum();
            if covered < in_area.size().area() {
                self.frame.fill(in_area, colour::BACKGROUND);
            }
            for (app, tile) in &tiles {
                let clip = tile.intersect(*r);
                if clip.is_empty() {
                    continue;
                }
                let content = self.content(*tile);
                if content != *tile {
                    let c = if focused.as_deref() == Some(app) {
                        colour::ACCENT
                    } else {
                        colour::FRAME
                    };
                    self.frame.fill_except(clip, content, c);
                }
                self.draw_content(app, content, content.intersect(*r));
            }
            if let Some((x, y)) = self.cursor {
                cursor::draw(&mut self.frame, x, y, *r);
            }
        }
        damaged
    }

    /// Draws `app`'s placeholder or surface into `clip`, a part of its `content` area;
    /// background where its surface does not reach.
    fn draw_content(&mut self, app: &str, content: Rect, clip: Rect) {
        if clip.is_empty() {
            return;
        }
        let Some(a) = self.apps.get(app) else { return };
        if let Some(text) = &a.placeholder {
            self.frame.fill(clip, colour::PLACEHOLDER);
            let (w, h) = (text::width(text) as i64, text::LINE as i64);
            let x = (content.x as i64 + (content.w as i64 - w) / 2).max(content.x as i64);
            let y = content.y as i64 + (content.h as i64 - h) / 2;
            // Both lie between the content's edges, on the screen.
            text::draw(&mut self.frame, x as i32, y as i32, text, colour::TEXT, clip);
            return;
        }
        let Some((size, px)) = a.surface.as_ref().and_then(|s| Some((s.size, s.pixels.as_ref()?))) else {
            self.frame.fill(clip, colour::BACKGROUND);
            return;
        };
        let shown = clip.intersect(Rect::new(content.x, content.y, size.w, size.h));
        let fw = self.frame.size.w as usize;
        for y in shown.y..shown.y + shown.h as i32 {
            let sy = (y - content.y) as usize;
            let sx = (shown.x - content.x) as usize;
            let src = &px[sy * size.w as usize + sx..][..shown.w as usize];
            let dst = y as usize * fw + shown.x as usize;
            self.frame.pixels[dst..dst + shown.w as usize].copy_from_slice(src);
        }
        self.frame.fill_except(clip, shown, colour::BACKGROUND);
    }

    fn draw_bar(&mut self, clip: Rect, focused: Option<&str>) {
        let bar = Rect::new(0, 0, self.frame.size.w, BAR_HEIGHT.min(self.frame.size.h));
        let clip = clip.intersect(bar);
        if clip.is_empty() {
            return;
        }
        self.frame.fill(clip, colour::BAR);
        let mut x = 4;
        let y = (BAR_HEIGHT as i32 - text::LINE as i32) / 2;
        for app in &self.order {
            let trouble = self.apps.get(app).is_some_and(|a| a.placeholder.is_some());
            let c = if focused == Some(app.as_str()) {
                colour::ACCENT
            } else if trouble {
                colour::TROUBLE
            } else {
                colour::TEXT
            };
            x = text::draw(&mut self.frame, x, y, app, c, clip) + text::char_width() as i32;
            if x as i64 >= bar.right() {
                break;
            }
        }
    }

    /// `app` wants to draw its next frame: answered at the first tick it is visible.
    pub fn request_frame(&mut self, app: &str) -> Result<(), DisplayError> {
        self.app(app)?;
        self.frame_requests.insert(app.to_string());
        Ok(())
    }

    /// One tick of the display's clock: see [`Tick`].
    pub fn tick(&mut self) -> Tick {
        let damaged = self.compose();
        let mut tick = Tick {
            damaged,
            ..Tick::default()
        };
        for (app, tile) in self.tiles() {
            let size = self.content(tile).size();
            if self.told.get(&app) != Some(&size) {
                self.told.insert(app.clone(), size);
                tick.resized.push((app.clone(), size));
            }
            if self.frame_requests.remove(&app) {
                tick.frames.push(app);
            }
        }
        tick
    }

    /// The composed screen.
    pub fn frame(&self) -> &Frame {
        &self.frame
    }

    /// A copy of `app`'s surface as it stands (black where it never drew), for a
    /// screenshot of one app; with its title.
    pub fn surface(&self, app: &str) -> Result<(Frame, String), DisplayError> {
        let s = self
            .app(app)?
            .surface
            .as_ref()
            .ok_or_else(|| DisplayError::NoSurface(app.to_string()))?;
        let pixels = s.pixels.clone().unwrap_or_else(|| vec![0; s.size.area() as usize]);
        Ok((Frame { size: s.size, pixels }, s.title.clone()))
    }
}
