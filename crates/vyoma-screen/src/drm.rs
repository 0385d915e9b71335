//! The screen through DRM/KMS: two dumb buffers, the composed frame's damaged rectangles
//! copied into the one not shown, then a page flip; the flip's completion paces the
//! display's clock (its next frame waits for it).
//!
//! Works with any KMS driver that has dumb buffers: QEMU's virtio-gpu and bochs-display,
//! simpledrm, and real GPUs' drivers. No GPU rendering: the compositor's frame is already
//! the picture.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::time::Duration;

use drm::Device as _;
use drm::buffer::DrmFourcc;
use drm::control::{
    Device as _, Mode, ModeTypeFlags, PageFlipFlags, connector, crtc, dumbbuffer::DumbBuffer, dumbbuffer::DumbMapping,
    framebuffer,
};
use vyoma_display::backend::Backend;
use vyoma_display::{Frame, Rect, Size};

use crate::ScreenError;

/// The card's file: what the `drm` crate's traits work on.
#[derive(Debug)]
struct Card(File);

impl AsFd for Card {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl drm::Device for Card {}
impl drm::control::Device for Card {}

/// How long a page flip may take before the screen is taken as stuck (and drawn without
/// waiting): far longer than any refresh period.
const FLIP_TIMEOUT: Duration = Duration::from_millis(500);

/// One of the two buffers.
struct Buffer {
    fb: framebuffer::Handle,
    map: DumbMapping<'static>,
    pitch: usize,
}

/// A KMS screen: a [`Backend`].
pub struct Drm {
    card: Card,
    path: String,
    crtc: crtc::Handle,
    connector: connector::Handle,
    mode: Mode,
    size: Size,
    period: Duration,
    buffers: [Buffer; 2],
    /// The buffer drawn next (the other one is on the screen).
    back: usize,
    /// A flip was asked for and has not completed.
    pending: bool,
    /// What changed in the last frame: the back buffer missed it.
    missed: Vec<Rect>,
    /// Flips that failed and fell back to setting the CRTC.
    fallbacks: u64,
}

impl std::fmt::Debug for Drm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Drm({} {})", self.path, self.size)
    }
}

fn fail(path: &str, what: &str) -> impl Fn(std::io::Error) -> ScreenError {
    let (path, what) = (path.to_string(), what.to_string());
    move |e| ScreenError::Drm {
        device: path.clone(),
        why: format!("{what}: {e}"),
    }
}

/// The mode to use: one of `want`'s size if asked and there is one, else the connector's
/// preferred mode, else its first.
pub fn pick_mode(modes: &[Mode], want: Option<Size>) -> Option<Mode> {
    let sized = |m: &&Mode| {
        let (w, h) = m.size();
        want.is_some_and(|s| s.w == u32::from(w) && s.h == u32::from(h))
    };
    modes
        .iter()
        .find(sized)
        .or_else(|| modes.iter().find(|m| m.mode_type().contains(ModeTypeFlags::PREFERRED)))
        .or_else(|| modes.first())
        .copied()
}

impl Drm {
    /// Opens the card at `path` (e.g. `/dev/dri/card0`) and shows a black screen on its
    /// first connected output, in a mode of size `want` if it has one.
    pub fn open(path: &Path, want: Option<Size>) -> Result<Drm, ScreenError> {
        let name = path.display().to_string();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(fail(&name, "cannot open it"))?;
        let card = Card(file);
        // The only user of the card: its master (a no-op if it already is).
        if let Err(e) = card.acquire_master_lock() {
            tracing::debug!(device = %name, error = %e, "not DRM master; mode setting may fail");
        }
        let res = card
            .resource_handles()
            .map_err(fail(&name, "cannot read its resources (is it a KMS device?)"))?;
        let mut output = None;
        for &c in res.connectors() {
            let info = card
                .get_connector(c, true)
                .map_err(fail(&name, "cannot read a connector"))?;
            if info.state() == connector::State::Connected && !info.modes().is_empty() {
                output = Some(info);
                break;
            }
        }
        let Some(con) = output else {
            return Err(ScreenError::Drm {
                device: name,
                why: "no connected output with a mode: attach a screen (QEMU: -device virtio-gpu-pci)".into(),
            });
        };
        let mode = pick_mode(con.modes(), want).expect("a connector with modes");
        let crtc = con
            .current_encoder()
            .into_iter()
            .chain(con.encoders().iter().copied())
            .filter_map(|e| card.get_encoder(e).ok())
            .find_map(|enc| {
                enc.crtc()
                    .or_else(|| res.filter_crtcs(enc.possible_crtcs()).first().copied())
            })
            .ok_or_else(|| ScreenError::Drm {
                device: name.clone(),
                why: "no display controller (CRTC) can drive its output".into(),
            })?;
        let (w, h) = mode.size();
        let size = Size::new(w.into(), h.into());
        let make = |_: usize| -> Result<Buffer, ScreenError> {
            let buf = card
                .create_dumb_buffer((size.w, size.h), DrmFourcc::Xrgb8888, 32)
                .map_err(fail(&name, "cannot allocate a dumb buffer"))?;
            let fb = card
                .add_framebuffer(&buf, 24, 32)
                .map_err(fail(&name, "cannot make a framebuffer"))?;
            let pitch = drm::buffer::Buffer::pitch(&buf) as usize;
            // The mapping lives as long as the screen (the process, in practice): the
            // buffer's description is leaked (a few bytes, twice) so it can be 'static.
            let buf: &'static mut DumbBuffer = Box::leak(Box::new(buf));
            let mut map = card
                .map_dumb_buffer(buf)
                .map_err(fail(&name, "cannot map a dumb buffer"))?;
            map.fill(0);
            Ok(Buffer { fb, map, pitch })
        };
        let buffers = [make(0)?, make(1)?];
        card.set_crtc(crtc, Some(buffers[0].fb), (0, 0), &[con.handle()], Some(mode))
            .map_err(fail(&name, "cannot set the mode"))?;
        let hz = mode.vrefresh().clamp(1, 240);
        Ok(Drm {
            card,
            path: name,
            crtc,
            connector: con.handle(),
            mode,
            size,
            period: Duration::from_nanos(1_000_000_000 / u64::from(hz)),
            buffers,
            back: 1,
            pending: false,
            // Both buffers start black; the first frame fills both.
            missed: vec![Rect::new(0, 0, size.w, size.h)],
            fallbacks: 0,
        })
    }

    /// The screen's size (its mode's).
    pub fn size(&self) -> Size {
        self.size
    }

    /// Waits (at most [`FLIP_TIMEOUT`]) for the pending flip to complete.
    fn wait_flip(&mut self) {
        use rustix::event::{PollFd, PollFlags, poll};
        let deadline = std::time::Instant::now() + FLIP_TIMEOUT;
        while self.pending {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                tracing::warn!(device = %self.path, "a page flip did not complete in {FLIP_TIMEOUT:?}; drawing anyway");
                self.pending = false;
                return;
            }
            let mut fds = [PollFd::new(&self.card, PollFlags::IN)];
            let timeout = rustix::event::Timespec {
                tv_sec: left.as_secs() as _,
                tv_nsec: left.subsec_nanos() as _,
            };
            match poll(&mut fds, Some(&timeout)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    tracing::warn!(device = %self.path, error = %e, "cannot wait for a page flip");
                    self.pending = false;
                    return;
                }
            }
            match self.card.receive_events() {
                Ok(events) => {
                    for e in events {
                        if let drm::control::Event::PageFlip(f) = e
                            && f.crtc == self.crtc
                        {
                            self.pending = false;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(device = %self.path, error = %e, "cannot read the card's events");
                    self.pending = false;
                }
            }
        }
    }
}

/// Copies `r` of `frame` into a mapped buffer with `pitch` bytes per row.
fn copy_rect(frame: &Frame, r: Rect, map: &mut [u8], pitch: usize) {
    for (x, y, row) in frame.rows(r) {
        let dst = &mut map[y * pitch + x * 4..][..row.len() * 4];
        for (d, s) in dst.chunks_exact_mut(4).zip(row) {
            d.copy_from_slice(&s.to_le_bytes());
        }
    }
}

impl Backend for Drm {
    fn name(&self) -> &str {
        "drm"
    }

    fn period(&self) -> Duration {
        self.period
    }

    fn waits(&self) -> bool {
        true
    }

    fn wait_ready(&mut self) {
        self.wait_flip();
    }

    fn present(&mut self, frame: &Frame, damaged: &[Rect]) {
        // The clock waited for the last flip before this frame; a caller that did not
        // (a test, or a stuck screen) must not draw into the buffer on the screen.
        self.wait_flip();
        let back = &mut self.buffers[self.back];
        for &r in self.missed.iter().chain(damaged) {
            copy_rect(frame, r, &mut back.map, back.pitch);
        }
        self.missed.clear();
        self.missed.extend_from_slice(damaged);
        let fb = back.fb;
        match self.card.page_flip(self.crtc, fb, PageFlipFlags::EVENT, None) {
            Ok(()) => self.pending = true,
            Err(e) => {
                // Some drivers cannot flip (or not now): show the buffer by setting the
                // CRTC, which waits for the screen itself.
                self.fallbacks += 1;
                if self.fallbacks == 1 {
                    tracing::warn!(device = %self.path, error = %e, "page flip failed; setting the CRTC instead");
                }
                if let Err(e) = self
                    .card
                    .set_crtc(self.crtc, Some(fb), (0, 0), &[self.connector], Some(self.mode))
                {
                    tracing::warn!(device = %self.path, error = %e, "cannot show a frame");
                }
            }
        }
        self.back ^= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(w: u16, h: u16, preferred: bool) -> Mode {
        Mode::from(drm_ffi::drm_mode_modeinfo {
            hdisplay: w,
            vdisplay: h,
            vrefresh: 60,
            type_: if preferred { drm_ffi::DRM_MODE_TYPE_PREFERRED } else { 0 },
            ..Default::default()
        })
    }

    #[test]
    fn the_asked_size_then_the_preferred_mode_then_the_first() {
        let modes = [mode(800, 600, false), mode(1280, 800, true), mode(1024, 768, false)];
        let size = |m: Option<Mode>| m.map(|m| m.size());
        assert_eq!(size(pick_mode(&modes, Some(Size::new(1024, 768)))), Some((1024, 768)));
        assert_eq!(size(pick_mode(&modes, Some(Size::new(640, 480)))), Some((1280, 800)));
        assert_eq!(size(pick_mode(&modes, None)), Some((1280, 800)));
        assert_eq!(size(pick_mode(&modes[..1], None)), Some((800, 600)));
        assert_eq!(size(pick_mode(&[], None)), None);
    }

    #[test]
    fn a_rect_is_copied_row_by_row_at_the_pitch_and_clipped() {
        let mut frame = Frame::new(Size::new(4, 3), 0);
        for (i, p) in frame.pixels.iter_mut().enumerate() {
            *p = 0x0001_0000 * i as u32 + 0xab;
        }
        // A pitch wider than a row, as drivers align them.
        let pitch = 4 * 4 + 8;
        let mut map = vec![0u8; pitch * 3];
        copy_rect(&frame, Rect::new(2, 1, 5, 5), &mut map, pitch);
        let px = |x: usize, y: usize| u32::from_le_bytes(map[y * pitch + x * 4..][..4].try_into().unwrap());
        assert_eq!(px(2, 1), frame.pixels[6]);
        assert_eq!(px(3, 2), frame.pixels[11]);
        assert_eq!(px(1, 1), 0, "left of the rect");
        assert_eq!(px(2, 0), 0, "above it");
        assert!(map[16..24].iter().all(|&b| b == 0), "the row's padding is left alone");
        copy_rect(&frame, Rect::new(-5, -5, 3, 3), &mut map, pitch);
    }
}
