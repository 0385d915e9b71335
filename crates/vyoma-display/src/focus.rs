//! Keyboard focus and the input events the compositor routes.
//!
//! Focus is a history: the focused app is the most recent one, and when it goes away
//! (it exits, traps, is removed or hidden) focus returns to the one focused before it.
//! The focus chord (Ctrl+Alt+Tab) belongs to the compositor: it cycles focus, and neither
//! its key-down nor the key-up that ends it reaches any app.

/// Modifier keys held with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mods {
    /// Control.
    pub ctrl: bool,
    /// Alt.
    pub alt: bool,
    /// Shift.
    pub shift: bool,
    /// Meta (Super, Windows, Command).
    pub meta: bool,
}

/// What a pointer or a finger did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Pressed (a button, or a finger down).
    Down,
    /// Moved.
    Move,
    /// Released.
    Up,
}

/// An input event in screen coordinates, from a device, a window or an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A key, by its W3C UI Events `code` (physical position, e.g. `KeyA`, `Enter`), with
    /// the text it types, if any.
    Key {
        /// The physical key.
        code: String,
        /// The text it produces (none for modifiers, arrows, ...).
        text: Option<String>,
        /// Pressed (true) or released.
        down: bool,
        /// Modifiers held.
        mods: Mods,
    },
    /// The pointer: a button pressed or released, or a move.
    Pointer {
        /// Screen x.
        x: i32,
        /// Screen y.
        y: i32,
        /// What happened.
        phase: Phase,
        /// The button pressed or released (0 left, 1 middle, 2 right); 0 for a move.
        button: u8,
    },
    /// A finger on a touch screen.
    Touch {
        /// Which finger (stable from down to up).
        id: u32,
        /// Screen x.
        x: i32,
        /// Screen y.
        y: i32,
        /// What happened.
        phase: Phase,
    },
}

/// Whether `code` with `mods` pressed is the compositor's focus chord.
pub fn is_focus_chord(code: &str, mods: Mods) -> bool {
    code == "Tab" && mods.ctrl && mods.alt
}

/// Which app has the keyboard, and which had it before.
#[derive(Debug, Clone, Default)]
pub struct Focus {
    /// Most recently focused last; each app at most once.
    history: Vec<String>,
}

impl Focus {
    /// The focused app.
    pub fn current(&self) -> Option<&str> {
        self.history.last().map(String::as_str)
    }

    /// Focuses `app`.
    pub fn set(&mut self, app: &str) {
        self.history.retain(|a| a != app);
        self.history.push(app.to_string());
    }

    /// `app` can no longer be focused: focus returns to the app focused before it (if it
    /// had focus).
    pub fn forget(&mut self, app: &str) {
        self.history.retain(|a| a != app);
    }

    /// Keeps only the apps `allowed` says may be focused (e.g. the ones a layout shows);
    /// if none is left, focuses `fallback`.
    pub fn keep(&mut self, allowed: impl Fn(&str) -> bool, fallback: Option<&str>) {
        self.history.retain(|a| allowed(a));
        if self.history.is_empty()
            && let Some(f) = fallback
        {
            self.set(f);
        }
    }

    /// Focuses the app after the focused one in `order` (wrapping), or the first.
    pub fn cycle(&mut self, order: &[&str]) {
        if order.is_empty() {
            return;
        }
        let next = match self.current().and_then(|c| order.iter().position(|a| *a == c)) {
            Some(i) => order[(i + 1) % order.len()],
            None => order[0],
        };
        self.set(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn focus_returns_to_the_previous_app() {
        let mut f = Focus::default();
        f.set("a");
        f.set("b");
        f.set("c");
        f.set("b");
        assert_eq!(f.current(), Some("b"));
        f.forget("b");
        assert_eq!(f.current(), Some("c"));
        f.forget("c");
        assert_eq!(f.current(), Some("a"));
        f.forget("a");
        assert_eq!(f.current(), None);
    }

    #[test]
    fn cycling_follows_the_display_order_and_wraps() {
        let mut f = Focus::default();
        f.cycle(&["a", "b", "c"]);
        assert_eq!(f.current(), Some("a"));
        f.cycle(&["a", "b", "c"]);
        f.cycle(&["a", "b", "c"]);
        assert_eq!(f.current(), Some("c"));
        f.cycle(&["a", "b", "c"]);
        assert_eq!(f.current(), Some("a"));
        f.keep(|a| a == "z", Some("z"));
        assert_eq!(f.current(), Some("z"));
    }

    #[test]
    fn only_ctrl_alt_tab_is_the_chord() {
        let both = Mods {
            ctrl: true,
            alt: true,
            ..Mods::default()
        };
        assert!(is_focus_chord("Tab", both));
        assert!(!is_focus_chord(
            "Tab",
            Mods {
                ctrl: true,
                ..Mods::default()
            }
        ));
        assert!(!is_focus_chord("KeyT", both));
    }
}
