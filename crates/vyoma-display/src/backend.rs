//! Where composed frames go: one trait for every backend (DRM/KMS, fbdev, a desktop
//! window), and the headless backend, which keeps frames in memory only (hosted mode's
//! default; screenshots read the compositor's frame).

use std::time::Duration;

use crate::Frame;
use crate::geom::Rect;
use crate::server::DEFAULT_PERIOD;

/// Shows composed frames.
pub trait Backend: Send {
    /// Its name, for `display` in the console.
    fn name(&self) -> &str;

    /// The time between frames it can show (its refresh period).
    fn period(&self) -> Duration {
        DEFAULT_PERIOD
    }

    /// Whether [`Backend::wait_ready`] blocks (it waits for page flips): the clock then
    /// calls it on a blocking thread, never on the apps' workers.
    fn waits(&self) -> bool {
        false
    }

    /// Blocks until the screen can take the next frame (a page flip completed); backends
    /// that do not flip return at once.
    fn wait_ready(&mut self) {}

    /// Shows `frame`, of which `damaged` changed since the last call.
    fn present(&mut self, frame: &Frame, damaged: &[Rect]);
}

/// No screen: frames stay in memory, for screenshots and tests.
#[derive(Debug, Default)]
pub struct Headless {
    /// Frames shown.
    pub presented: u64,
}

impl Backend for Headless {
    fn name(&self) -> &str {
        "headless"
    }

    fn present(&mut self, _frame: &Frame, _damaged: &[Rect]) {
        self.presented += 1;
    }
}
