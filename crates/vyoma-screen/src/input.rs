//! The machine's input devices (`/dev/input/event*`, evdev): keyboards, mice, tablets and
//! touch screens, each read by a thread of its own that hands the display what
//! [`Translator`] makes of its events; devices plugged in later are found by looking
//! again every [`RESCAN`].

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use evdev::{AbsoluteAxisCode, Device, KeyCode, PropType, RelativeAxisCode};
use vyoma_display::{Display, Size};

use crate::translate::{Range, Shape, Translator};

/// What a device is to the display, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// It has letter keys.
    Keyboard,
    /// A mouse (relative) or a tablet (absolute, not on the screen).
    Pointer,
    /// A touch screen.
    Touch,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Keyboard => "keyboard",
            Kind::Pointer => "pointer",
            Kind::Touch => "touch",
        })
    }
}

/// One device being read.
#[derive(Debug, Clone)]
pub struct Opened {
    /// Its node, e.g. `/dev/input/event2`.
    pub path: PathBuf,
    /// Its name, as the kernel says it (not escaped: callers print it through the
    /// console's terminal-safe rendering).
    pub name: String,
    /// What it is.
    pub kinds: Vec<Kind>,
    /// A mouse: it moves a pointer the display draws (nothing else would show where).
    pub mouse: bool,
}

fn range(dev: &Device, axis: AbsoluteAxisCode) -> Option<Range> {
    let info = dev.get_absinfo().ok()?.find(|(a, _)| *a == axis)?.1;
    Some(Range {
        min: info.minimum(),
        max: info.maximum(),
    })
}

/// What `dev` is, and its shape for the translator.
fn classify(dev: &Device) -> (Vec<Kind>, Shape) {
    let keys = dev.supported_keys();
    let has_key = |k: KeyCode| keys.is_some_and(|s| s.contains(k));
    let abs = dev.supported_absolute_axes();
    let has_abs = |a: AbsoluteAxisCode| abs.is_some_and(|s| s.contains(a));
    let rel = dev
        .supported_relative_axes()
        .is_some_and(|s| s.contains(RelativeAxisCode::REL_X));
    let direct = dev.properties().contains(PropType::DIRECT);
    let pair = |x: AbsoluteAxisCode, y: AbsoluteAxisCode| {
        (has_abs(x) && has_abs(y))
            .then(|| Some((range(dev, x)?, range(dev, y)?)))
            .flatten()
    };
    let shape = Shape {
        direct,
        abs: pair(AbsoluteAxisCode::ABS_X, AbsoluteAxisCode::ABS_Y),
        mt: pair(AbsoluteAxisCode::ABS_MT_POSITION_X, AbsoluteAxisCode::ABS_MT_POSITION_Y),
    };
    let mut kinds = Vec::new();
    if has_key(KeyCode::KEY_A) || has_key(KeyCode::KEY_ENTER) {
        kinds.push(Kind::Keyboard);
    }
    if direct && (shape.abs.is_some() || shape.mt.is_some()) {
        kinds.push(Kind::Touch);
    } else if has_key(KeyCode::BTN_LEFT) && (rel || shape.abs.is_some()) {
        kinds.push(Kind::Pointer);
    }
    (kinds, shape)
}

/// How often `/dev/input` is looked at again for devices plugged in since (a kiosk's
/// keyboard unplugged and plugged back in).
pub const RESCAN: Duration = Duration::from_secs(2);

/// The input nodes known: those being read, and those that are no device of ours.
#[derive(Debug, Default)]
pub struct Known {
    reading: HashSet<PathBuf>,
    ignored: HashSet<PathBuf>,
}

impl Known {
    /// Of the nodes `listed` now, those not seen before (in order); forgets ignored nodes
    /// that are gone (their number may come back as another device).
    pub fn fresh(&mut self, mut listed: Vec<PathBuf>) -> Vec<PathBuf> {
        listed.sort();
        self.ignored.retain(|p| listed.contains(p));
        listed.retain(|p| !self.reading.contains(p) && !self.ignored.contains(p));
        listed
    }
}

/// The evdev nodes in `/dev/input`.
fn listed() -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir("/dev/input") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter(|e| e.file_name().as_encoded_bytes().starts_with(b"event"))
        .map(|e| e.path())
        .collect()
}

/// Opens every input device the display can use and starts reading each on its own
/// thread, feeding `display` (a screen of `screen`); then keeps looking for devices
/// plugged in later ([`RESCAN`]). Returns what it opened at first; devices that are
/// neither keyboards, pointers nor touch screens (a power button) are left alone.
pub fn start(display: &Arc<Display>, screen: Size) -> Vec<Opened> {
    let known = Arc::new(Mutex::new(Known::default()));
    let first = scan(&known, display, screen);
    let d = display.clone();
    let watcher = std::thread::Builder::new()
        .name("vyoma-input-scan".into())
        .spawn(move || {
            loop {
                std::thread::sleep(RESCAN);
                for o in scan(&known, &d, screen) {
                    tracing::info!(device = %o.path.display(), name = %o.name.escape_debug(), "input device plugged in");
                }
            }
        });
    if let Err(e) = watcher {
        tracing::warn!(error = %e, "cannot watch for input devices plugged in later");
    }
    first
}

/// Opens the devices not known yet and starts reading them.
fn scan(known: &Arc<Mutex<Known>>, display: &Arc<Display>, screen: Size) -> Vec<Opened> {
    let fresh = known.lock().unwrap_or_else(PoisonError::into_inner).fresh(listed());
    let mut opened = Vec::new();
    for path in fresh {
        let dev = match Device::open(&path) {
            Ok(d) => d,
            Err(e) => {
                // Gone already, or not ours to read: looked at again next time.
                tracing::debug!(device = %path.display(), error = %e, "cannot open an input device");
                continue;
            }
        };
        let (kinds, shape) = classify(&dev);
        let mut k = known.lock().unwrap_or_else(PoisonError::into_inner);
        if kinds.is_empty() {
            k.ignored.insert(path);
            continue;
        }
        let info = Opened {
            path: path.clone(),
            name: dev.name().unwrap_or("unnamed").to_string(),
            mouse: kinds.contains(&Kind::Pointer) && shape.abs.is_none(),
            kinds,
        };
        if info.mouse {
            display.show_cursor(true);
        }
        let (d, known2) = (display.clone(), known.clone());
        let thread = std::thread::Builder::new().name("vyoma-input".into()).spawn(move || {
            read(dev, &path, Translator::new(screen, shape), d);
            known2
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .reading
                .remove(&path);
        });
        match thread {
            Ok(_) => {
                k.reading.insert(info.path.clone());
                opened.push(info);
            }
            Err(e) => tracing::warn!(device = %info.path.display(), error = %e, "cannot start reading an input device"),
        }
    }
    opened
}

/// Reads `dev` until it goes away.
fn read(mut dev: Device, path: &std::path::Path, mut tr: Translator, display: Arc<Display>) {
    let mut out = Vec::new();
    loop {
        let events = match dev.fetch_events() {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::info!(device = %path.display(), error = %e, "input device gone");
                return;
            }
        };
        for e in events {
            tr.event(e.event_type().0, e.code(), e.value(), &mut out);
        }
        for input in out.drain(..) {
            display.input(input);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(|n| PathBuf::from(format!("/dev/input/{n}"))).collect()
    }

    #[test]
    fn only_new_nodes_are_opened_and_a_gone_one_can_come_back() {
        let mut k = Known::default();
        assert_eq!(
            k.fresh(paths(&["event2", "event0", "event1"])),
            paths(&["event0", "event1", "event2"])
        );
        k.reading.insert(paths(&["event0"])[0].clone());
        k.ignored.insert(paths(&["event1"])[0].clone());
        assert_eq!(k.fresh(paths(&["event0", "event1", "event3"])), paths(&["event3"]));
        // event1 was unplugged; a keyboard plugged in later gets its number.
        assert_eq!(k.fresh(paths(&["event0"])), paths(&[]));
        assert_eq!(k.fresh(paths(&["event0", "event1"])), paths(&["event1"]));
        // A device being read that went away is forgotten by its reader, then found again.
        k.reading.clear();
        assert_eq!(k.fresh(paths(&["event0"])), paths(&["event0"]));
    }
}
