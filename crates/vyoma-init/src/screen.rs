//! The image's display: which backend `vyoma.display` and the machine give (the KMS
//! screen, else the framebuffer, else headless), its input devices, and its clock.

use std::path::Path;

use vyoma_display::backend::{Backend, Headless};
use vyoma_display::{Display, Size};
use vyoma_screen::ScreenError;
use vyoma_screen::drm::Drm;
use vyoma_screen::fbdev::{self, Fbdev};
use vyoma_supervisor::{Supervisor, console};

use crate::cmdline::{BootOptions, DisplayChoice};

/// The headless screen's size unless `vyoma.screen` says otherwise.
pub const HEADLESS_SIZE: Size = Size { w: 1280, h: 800 };

/// Which backend to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The KMS card.
    Drm,
    /// The framebuffer device.
    Fbdev,
    /// In memory.
    Headless,
    /// None.
    Off,
}

/// What `choice` means on a machine that has a KMS card (`card`) or not, and a
/// framebuffer device (`fb`) or not.
pub fn plan(choice: DisplayChoice, card: bool, fb: bool) -> Plan {
    match choice {
        DisplayChoice::Off => Plan::Off,
        DisplayChoice::Headless => Plan::Headless,
        DisplayChoice::Drm => Plan::Drm,
        DisplayChoice::Fbdev => Plan::Fbdev,
        DisplayChoice::Auto if card => Plan::Drm,
        DisplayChoice::Auto if fb => Plan::Fbdev,
        DisplayChoice::Auto => Plan::Headless,
    }
}

/// A screen's backend and size.
type Screen = (Box<dyn Backend>, Size);

/// Opens the screen `plan` names; `None` for headless.
fn open(plan: Plan, opts: &BootOptions) -> Result<Option<Screen>, ScreenError> {
    Ok(match plan {
        Plan::Off | Plan::Headless => None,
        Plan::Drm => {
            let d = Drm::open(Path::new(vyoma_screen::CARD), opts.screen)?;
            let size = d.size();
            Some((Box::new(d), size))
        }
        Plan::Fbdev => {
            let f = Fbdev::open(Path::new(fbdev::FB), Path::new(fbdev::FB_SYSFS))?;
            let size = f.size();
            Some((Box::new(f), size))
        }
    })
}

/// Gives `sup` its display as `opts` say, starting the clock and the input devices; says
/// on the console what it chose (`say`). Outside PID 1 (`pid1` false: hosted tests) the
/// machine's screen is never taken unless `vyoma.display=drm` or `fbdev` asks for it.
pub fn start(sup: &Supervisor, opts: &BootOptions, pid1: bool, say: impl Fn(&str)) {
    let exists = |p: &str| pid1 && Path::new(p).exists();
    let plan = plan(opts.display, exists(vyoma_screen::CARD), exists(fbdev::FB));
    if plan == Plan::Off {
        say("display: off (vyoma.display=off)");
        return;
    }
    let screen = match open(plan, opts) {
        Ok(s) => s,
        Err(e) => {
            say(&format!("display: {e}; composing headless instead"));
            None
        }
    };
    let on_screen = screen.is_some();
    let (backend, size) = screen.unwrap_or_else(|| {
        let size = opts.screen.unwrap_or(HEADLESS_SIZE);
        (Box::new(Headless::default()), size)
    });
    let name = backend.name().to_string();
    let display = Display::new(&name, size, opts.layout.clone(), opts.bar);
    sup.show_on(display.clone());
    display.start_clock(backend);
    say(&console::render_display_started(&name, size, &opts.layout, opts.bar));
    if on_screen {
        let devices = vyoma_screen::input::start(&display, size);
        if devices.is_empty() {
            say(
                "input: no keyboard, pointer or touch screen (QEMU: -device virtio-keyboard-pci -device virtio-tablet-pci)",
            );
        }
        for d in devices {
            let kinds: Vec<String> = d.kinds.iter().map(ToString::to_string).collect();
            say(&format!(
                "input: {} {} ({})",
                kinds.join("+"),
                d.path.display(),
                console::terminal_safe(&d.name)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_the_kms_screen_then_the_framebuffer() {
        assert_eq!(plan(DisplayChoice::Auto, true, true), Plan::Drm);
        assert_eq!(plan(DisplayChoice::Auto, false, true), Plan::Fbdev);
        assert_eq!(plan(DisplayChoice::Auto, false, false), Plan::Headless);
        assert_eq!(plan(DisplayChoice::Headless, true, true), Plan::Headless);
        // Asked for: tried, and its failure said.
        assert_eq!(plan(DisplayChoice::Drm, false, false), Plan::Drm);
        assert_eq!(plan(DisplayChoice::Fbdev, true, false), Plan::Fbdev);
        assert_eq!(plan(DisplayChoice::Off, true, true), Plan::Off);
    }
}
