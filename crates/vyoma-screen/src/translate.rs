//! From an input device's raw events to the display's [`Input`]s: pure logic, tested with
//! event streams written out by hand, as the kernel sends them.
//!
//! A device reports in frames: any number of key, relative and absolute events, then
//! `SYN_REPORT`. Keys go out as they come (through the shared [`Keyboard`], so modifiers
//! and text are the same as the window's and the console's); pointer and touch changes are
//! gathered and go out at the end of the frame, the move first, so a click lands where the
//! frame put the pointer. Absolute axes (a tablet, a touch screen) are scaled from the
//! device's range to the screen; relative ones (a mouse) move a pointer kept on the screen.
//! A touch screen (`INPUT_PROP_DIRECT`) gives touches: one finger from `BTN_TOUCH`, or
//! one per slot with the multi-touch protocol (type B).

use vyoma_display::keymap::Keyboard;
use vyoma_display::{Input, Phase, Size};

/// Event types (`linux/input-event-codes.h`).
pub const EV_SYN: u16 = 0x00;
/// Keys and buttons.
pub const EV_KEY: u16 = 0x01;
/// Relative axes.
pub const EV_REL: u16 = 0x02;
/// Absolute axes.
pub const EV_ABS: u16 = 0x03;
/// The end of a frame.
pub const SYN_REPORT: u16 = 0;
/// The kernel's buffer overflowed: events were lost up to the next report.
pub const SYN_DROPPED: u16 = 3;
/// Relative x.
pub const REL_X: u16 = 0x00;
/// Relative y.
pub const REL_Y: u16 = 0x01;
/// Absolute x.
pub const ABS_X: u16 = 0x00;
/// Absolute y.
pub const ABS_Y: u16 = 0x01;
/// The multi-touch slot the next events are for.
pub const ABS_MT_SLOT: u16 = 0x2f;
/// A slot's x.
pub const ABS_MT_POSITION_X: u16 = 0x35;
/// A slot's y.
pub const ABS_MT_POSITION_Y: u16 = 0x36;
/// A slot's contact: a new id when a finger lands, -1 when it lifts.
pub const ABS_MT_TRACKING_ID: u16 = 0x39;
/// The left mouse button.
pub const BTN_LEFT: u16 = 0x110;
/// The right mouse button.
pub const BTN_RIGHT: u16 = 0x111;
/// The middle mouse button.
pub const BTN_MIDDLE: u16 = 0x112;
/// A finger (or pen) touching.
pub const BTN_TOUCH: u16 = 0x14a;

/// The slots of a multi-touch screen followed (more are ignored).
pub const MAX_SLOTS: usize = 10;

/// An absolute axis's range, as the device reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Its smallest value.
    pub min: i32,
    /// Its largest value.
    pub max: i32,
}

impl Range {
    /// `v` on this axis, on a screen axis of `len` pixels (clamped to it).
    fn scale(self, v: i32, len: u32) -> i32 {
        let span = i64::from(self.max) - i64::from(self.min);
        let last = i64::from(len.max(1) - 1);
        if span <= 0 {
            return 0;
        }
        let p = (i64::from(v) - i64::from(self.min)) * last / span;
        p.clamp(0, last) as i32
    }
}

/// What a device is, from what it says it supports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// A touch screen (`INPUT_PROP_DIRECT`): contacts are touches, not a pointer.
    pub direct: bool,
    /// The ranges of `ABS_X` and `ABS_Y`, if it has them.
    pub abs: Option<(Range, Range)>,
    /// The ranges of `ABS_MT_POSITION_X` and `_Y`, if it speaks multi-touch.
    pub mt: Option<(Range, Range)>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// The contact's id while a finger is down.
    id: Option<u32>,
    /// What went out last: the id reported down, if any.
    shown: Option<u32>,
    x: i32,
    y: i32,
    moved: bool,
}

/// One device's events to [`Input`]s.
#[derive(Debug, Clone)]
pub struct Translator {
    screen: Size,
    shape: Shape,
    keyboard: Keyboard,
    /// The pointer, in screen coordinates.
    x: i32,
    y: i32,
    moved: bool,
    /// Button changes of this frame: (button, down).
    buttons: Vec<(u8, bool)>,
    /// One-finger touch: whether the finger is down, and whether that changed.
    touching: bool,
    touch_changed: bool,
    slots: [Slot; MAX_SLOTS],
    slot: usize,
    /// Events are being dropped until the next report.
    dropping: bool,
}

impl Translator {
    /// A translator for a device of `shape` on a screen of `screen`; the pointer starts in
    /// the screen's middle.
    pub fn new(screen: Size, shape: Shape) -> Translator {
        Translator {
            screen,
            shape,
            keyboard: Keyboard::default(),
            x: (screen.w / 2) as i32,
            y: (screen.h / 2) as i32,
            moved: false,
            buttons: Vec::new(),
            touching: false,
            touch_changed: false,
            slots: [Slot::default(); MAX_SLOTS],
            slot: 0,
            dropping: false,
        }
    }

    /// Takes one raw event; appends to `out` what the display should get now.
    pub fn event(&mut self, kind: u16, code: u16, value: i32, out: &mut Vec<Input>) {
        if kind == EV_SYN {
            match code {
                SYN_REPORT if self.dropping => self.dropping = false,
                SYN_REPORT => self.report(out),
                SYN_DROPPED => {
                    // What this frame said is incomplete: forget it. (evdev's `Device`
                    // then replays the device's state as events, so nothing stays stuck.)
                    self.dropping = true;
                    self.moved = false;
                    self.buttons.clear();
                    self.touch_changed = false;
                }
                _ => {}
            }
            return;
        }
        if self.dropping {
            return;
        }
        match kind {
            EV_KEY => self.key(code, value, out),
            EV_REL => {
                let (w, h) = (self.screen.w as i32, self.screen.h as i32);
                match code {
                    REL_X => self.x = self.x.saturating_add(value).clamp(0, w - 1),
                    REL_Y => self.y = self.y.saturating_add(value).clamp(0, h - 1),
                    _ => return,
                }
                self.moved = true;
            }
            EV_ABS => self.abs(code, value),
            _ => {}
        }
    }

    fn key(&mut self, code: u16, value: i32, out: &mut Vec<Input>) {
        let down = value != 0;
        let button = match code {
            BTN_LEFT => Some(0),
            BTN_MIDDLE => Some(1),
            BTN_RIGHT => Some(2),
            _ => None,
        };
        if let Some(b) = button {
            // A repeat (2) of a button means nothing.
            if value != 2 {
                self.buttons.push((b, down));
            }
        } else if code == BTN_TOUCH {
            if self.shape.direct && self.shape.mt.is_none() && value != 2 && down != self.touching {
                self.touching = down;
                self.touch_changed = true;
            }
        } else if let Some(input) = self.keyboard.key(code, down) {
            // A held key's repeats (2) are key-downs again, as a desktop's are.
            out.push(input);
        }
    }

    fn abs(&mut self, code: u16, value: i32) {
        let screen = self.screen;
        match code {
            ABS_X | ABS_Y if self.shape.mt.is_some() && self.shape.direct => {
                // A multi-touch screen repeats its first contact here: the slots say it.
            }
            ABS_X => {
                if let Some((rx, _)) = self.shape.abs {
                    self.x = rx.scale(value, screen.w);
                    self.moved = true;
                }
            }
            ABS_Y => {
                if let Some((_, ry)) = self.shape.abs {
                    self.y = ry.scale(value, screen.h);
                    self.moved = true;
                }
            }
            ABS_MT_SLOT => self.slot = usize::try_from(value).unwrap_or(MAX_SLOTS),
            ABS_MT_TRACKING_ID | ABS_MT_POSITION_X | ABS_MT_POSITION_Y => {
                let Some((rx, ry)) = self.shape.mt else { return };
                let Some(slot) = self.slots.get_mut(self.slot) else {
                    return;
                };
                match code {
                    ABS_MT_TRACKING_ID => slot.id = u32::try_from(value).ok(),
                    ABS_MT_POSITION_X => slot.x = rx.scale(value, screen.w),
                    _ => slot.y = ry.scale(value, screen.h),
                }
                slot.moved = true;
            }
            _ => {}
        }
    }

    /// The end of a frame: the pointer's move, then its buttons, then touches.
    fn report(&mut self, out: &mut Vec<Input>) {
        let (x, y) = (self.x, self.y);
        if self.shape.direct && self.shape.mt.is_none() {
            // One finger: the position is the touch's.
            let phase = match (self.touch_changed, self.touching) {
                (true, true) => Some(Phase::Down),
                (true, false) => Some(Phase::Up),
                (false, true) if self.moved => Some(Phase::Move),
                _ => None,
            };
            if let Some(phase) = phase {
                out.push(Input::Touch { id: 0, x, y, phase });
            }
        } else if !self.shape.direct {
            if self.moved {
                out.push(Input::Pointer {
                    x,
                    y,
                    phase: Phase::Move,
                    button: 0,
                });
            }
            for (button, down) in self.buttons.drain(..) {
                let phase = if down { Phase::Down } else { Phase::Up };
                out.push(Input::Pointer { x, y, phase, button });
            }
        }
        for s in &mut self.slots {
            if !s.moved {
                continue;
            }
            s.moved = false;
            let (x, y) = (s.x, s.y);
            let touch = |id, phase| Input::Touch { id, x, y, phase };
            match (s.shown, s.id) {
                (None, Some(id)) => out.push(touch(id, Phase::Down)),
                (Some(was), None) => out.push(touch(was, Phase::Up)),
                (Some(was), Some(id)) if was != id => {
                    // A new finger in the slot without a lift in between (lost events).
                    out.push(touch(was, Phase::Up));
                    out.push(touch(id, Phase::Down));
                }
                (Some(id), Some(_)) => out.push(touch(id, Phase::Move)),
                (None, None) => {}
            }
            s.shown = s.id;
        }
        self.buttons.clear();
        self.moved = false;
        self.touch_changed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCREEN: Size = Size { w: 1280, h: 800 };
    /// QEMU's virtio tablet: 0..32767 on both axes.
    const TABLET: Range = Range { min: 0, max: 0x7fff };

    fn run(tr: &mut Translator, events: &[(u16, u16, i32)]) -> Vec<Input> {
        let mut out = Vec::new();
        for &(k, c, v) in events {
            tr.event(k, c, v, &mut out);
        }
        out
    }

    fn ptr(x: i32, y: i32, phase: Phase, button: u8) -> Input {
        Input::Pointer { x, y, phase, button }
    }

    fn touch(id: u32, x: i32, y: i32, phase: Phase) -> Input {
        Input::Touch { id, x, y, phase }
    }

    const SYN: (u16, u16, i32) = (EV_SYN, SYN_REPORT, 0);

    fn tablet() -> Translator {
        let shape = Shape {
            abs: Some((TABLET, TABLET)),
            ..Shape::default()
        };
        Translator::new(SCREEN, shape)
    }

    #[test]
    fn a_tablet_click_lands_where_its_frame_moved_the_pointer() {
        let mut tr = tablet();
        let out = run(
            &mut tr,
            &[
                (EV_ABS, ABS_X, 0x4000),
                (EV_ABS, ABS_Y, 0x7fff),
                (EV_KEY, BTN_LEFT, 1),
                SYN,
            ],
        );
        assert_eq!(out, [ptr(639, 799, Phase::Move, 0), ptr(639, 799, Phase::Down, 0)]);
        let out = run(&mut tr, &[(EV_KEY, BTN_RIGHT, 1), (EV_KEY, BTN_LEFT, 0), SYN]);
        assert_eq!(out, [ptr(639, 799, Phase::Down, 2), ptr(639, 799, Phase::Up, 0)]);
        assert_eq!(run(&mut tr, &[(EV_ABS, ABS_X, 0)]), [], "nothing before the report");
        assert_eq!(run(&mut tr, &[SYN]), [ptr(0, 799, Phase::Move, 0)]);
        assert_eq!(run(&mut tr, &[SYN]), [], "an empty frame says nothing");
    }

    #[test]
    fn a_mouse_moves_a_pointer_kept_on_the_screen() {
        let mut tr = Translator::new(SCREEN, Shape::default());
        let out = run(&mut tr, &[(EV_REL, REL_X, 10), (EV_REL, REL_Y, -5), SYN]);
        assert_eq!(out, [ptr(650, 395, Phase::Move, 0)]);
        let out = run(&mut tr, &[(EV_REL, REL_X, -5000), (EV_REL, REL_Y, i32::MAX), SYN]);
        assert_eq!(out, [ptr(0, 799, Phase::Move, 0)]);
        // The wheel is not a pointer move.
        assert_eq!(run(&mut tr, &[(EV_REL, 0x08, 1), SYN]), []);
    }

    #[test]
    fn keys_type_through_the_shared_keymap_and_repeat() {
        let mut tr = Translator::new(SCREEN, Shape::default());
        let out = run(
            &mut tr,
            &[(EV_KEY, 42, 1), (EV_KEY, 30, 1), (EV_KEY, 30, 2), (EV_KEY, 30, 0)],
        );
        let texts: Vec<_> = out
            .iter()
            .map(|i| match i {
                Input::Key { code, text, down, .. } => (code.as_str(), text.as_deref(), *down),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            texts,
            [
                ("ShiftLeft", None, true),
                ("KeyA", Some("A"), true),
                ("KeyA", Some("A"), true),
                ("KeyA", None, false)
            ]
        );
        assert_eq!(
            run(&mut tr, &[(EV_KEY, 0x2ff, 1)]),
            [],
            "a key the keymap does not know"
        );
    }

    #[test]
    fn a_single_touch_screen_gives_one_finger() {
        let shape = Shape {
            direct: true,
            abs: Some((Range { min: 0, max: 1023 }, Range { min: 0, max: 1023 })),
            mt: None,
        };
        let mut tr = Translator::new(SCREEN, shape);
        let out = run(
            &mut tr,
            &[(EV_KEY, BTN_TOUCH, 1), (EV_ABS, ABS_X, 1023), (EV_ABS, ABS_Y, 0), SYN],
        );
        assert_eq!(out, [touch(0, 1279, 0, Phase::Down)]);
        assert_eq!(
            run(&mut tr, &[(EV_ABS, ABS_Y, 512), SYN]),
            [touch(0, 1279, 399, Phase::Move)]
        );
        assert_eq!(
            run(&mut tr, &[(EV_KEY, BTN_TOUCH, 0), SYN]),
            [touch(0, 1279, 399, Phase::Up)]
        );
        assert_eq!(run(&mut tr, &[(EV_ABS, ABS_Y, 0), SYN]), [], "no finger, no touch");
    }

    #[test]
    fn multi_touch_slots_are_fingers_by_tracking_id() {
        let r = Range { min: 0, max: 1279 };
        let shape = Shape {
            direct: true,
            abs: Some((r, r)),
            mt: Some((r, Range { min: 0, max: 799 })),
        };
        let mut tr = Translator::new(SCREEN, shape);
        let out = run(
            &mut tr,
            &[
                (EV_ABS, ABS_MT_SLOT, 0),
                (EV_ABS, ABS_MT_TRACKING_ID, 7),
                (EV_ABS, ABS_MT_POSITION_X, 10),
                (EV_ABS, ABS_MT_POSITION_Y, 20),
                (EV_ABS, ABS_MT_SLOT, 1),
                (EV_ABS, ABS_MT_TRACKING_ID, 8),
                (EV_ABS, ABS_MT_POSITION_X, 100),
                (EV_ABS, ABS_MT_POSITION_Y, 200),
                (EV_KEY, BTN_TOUCH, 1),
                (EV_ABS, ABS_X, 10),
                SYN,
            ],
        );
        assert_eq!(out, [touch(7, 10, 20, Phase::Down), touch(8, 100, 200, Phase::Down)]);
        let out = run(
            &mut tr,
            &[
                (EV_ABS, ABS_MT_SLOT, 0),
                (EV_ABS, ABS_MT_POSITION_X, 11),
                (EV_ABS, ABS_MT_SLOT, 1),
                (EV_ABS, ABS_MT_TRACKING_ID, -1),
                SYN,
            ],
        );
        assert_eq!(out, [touch(7, 11, 20, Phase::Move), touch(8, 100, 200, Phase::Up)]);
        // A slot past the ones followed is ignored, not a panic.
        assert_eq!(
            run(
                &mut tr,
                &[(EV_ABS, ABS_MT_SLOT, 99), (EV_ABS, ABS_MT_TRACKING_ID, 1), SYN]
            ),
            []
        );
        assert_eq!(
            run(
                &mut tr,
                &[(EV_ABS, ABS_MT_SLOT, -3), (EV_ABS, ABS_MT_TRACKING_ID, 1), SYN]
            ),
            []
        );
    }

    #[test]
    fn a_dropped_frame_is_forgotten() {
        let mut tr = tablet();
        let out = run(
            &mut tr,
            &[
                (EV_ABS, ABS_X, 0),
                (EV_SYN, SYN_DROPPED, 0),
                (EV_KEY, BTN_LEFT, 1),
                SYN,
                (EV_KEY, BTN_LEFT, 1),
                SYN,
            ],
        );
        assert_eq!(out, [ptr(0, 400, Phase::Down, 0)]);
    }

    #[test]
    fn ranges_scale_to_the_screen_and_clamp() {
        let r = Range { min: -100, max: 100 };
        assert_eq!(r.scale(-100, 201), 0);
        assert_eq!(r.scale(0, 201), 100);
        assert_eq!(r.scale(1000, 201), 200);
        assert_eq!(Range { min: 5, max: 5 }.scale(5, 100), 0, "an empty range");
        assert_eq!(
            Range {
                min: i32::MIN,
                max: i32::MAX
            }
            .scale(i32::MAX, 10),
            9
        );
    }
}
