//! The display on the machine's own screen and input devices, for the image (Linux).
//!
//! What it is for: a [`Backend`](vyoma_display::backend::Backend) that shows the
//! compositor's frames on a KMS screen (`drm`: dumb buffers with page flips, the flips
//! pacing the display's clock) or a legacy framebuffer (`fbdev`), and the input devices (`input`: evdev keyboards, mice,
//! tablets, touch screens) feeding the display as the window's events do hosted. How raw
//! input events become the display's [`Input`](vyoma_display::Input)s is pure logic
//! ([`translate`]), tested without devices.
//!
//! What it is not for: composing (`vyoma-display`), hosted mode's window (`vyoma-window`),
//! or deciding whether the machine has a screen (PID 1 does, from its options).

pub mod translate;

#[cfg(target_os = "linux")]
pub mod drm;
#[cfg(unix)]
pub mod fbdev;
#[cfg(target_os = "linux")]
pub mod input;

/// The first KMS card, where the image looks for its screen.
pub const CARD: &str = "/dev/dri/card0";

/// Why the screen could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    /// The DRM device failed.
    #[error("the screen {device}: {why}")]
    Drm {
        /// Its node.
        device: String,
        /// What failed.
        why: String,
    },
    /// The framebuffer device failed.
    #[error("the framebuffer {device}: {why}")]
    Fbdev {
        /// Its node (or sysfs folder).
        device: String,
        /// What failed.
        why: String,
    },
}
