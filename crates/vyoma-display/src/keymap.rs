//! Keys as the kernel numbers them (evdev codes, `linux/input-event-codes.h`; an X server's
//! keycodes are these plus 8) turned into W3C UI Events `code`s and, on a US layout, the
//! text they type; and [`Keyboard`], which tracks the modifiers held so each key event
//! carries them. Pure.
//!
//! Written here rather than taken from a crate: the table is the one fact needed (about a
//! hundred keys), and the crates that have it (xkbcommon bindings) bring a C library.

use crate::focus::{Input, Mods};

/// One key: its evdev code, W3C `code`, and the text it types without and with Shift.
struct Key {
    evdev: u16,
    code: &'static str,
    text: Option<(char, char)>,
}

const fn k(evdev: u16, code: &'static str, plain: char, shifted: char) -> Key {
    Key {
        evdev,
        code,
        text: Some((plain, shifted)),
    }
}

const fn n(evdev: u16, code: &'static str) -> Key {
    Key {
        evdev,
        code,
        text: None,
    }
}

/// The keys of a PC keyboard with a US layout.
const KEYS: &[Key] = &[
    n(1, "Escape"),
    k(2, "Digit1", '1', '!'),
    k(3, "Digit2", '2', '@'),
    k(4, "Digit3", '3', '#'),
    k(5, "Digit4", '4', '$'),
    k(6, "Digit5", '5', '%'),
    k(7, "Digit6", '6', '^'),
    k(8, "Digit7", '7', '&'),
    k(9, "Digit8", '8', '*'),
    k(10, "Digit9", '9', '('),
    k(11, "Digit0", '0', ')'),
    k(12, "Minus", '-', '_'),
    k(13, "Equal", '=', '+'),
    n(14, "Backspace"),
    n(15, "Tab"),
    k(16, "KeyQ", 'q', 'Q'),
    k(17, "KeyW", 'w', 'W'),
    k(18, "KeyE", 'e', 'E'),
    k(19, "KeyR", 'r', 'R'),
    k(20, "KeyT", 't', 'T'),
    k(21, "KeyY", 'y', 'Y'),
    k(22, "KeyU", 'u', 'U'),
    k(23, "KeyI", 'i', 'I'),
    k(24, "KeyO", 'o', 'O'),
    k(25, "KeyP", 'p', 'P'),
    k(26, "BracketLeft", '[', '{'),
    k(27, "BracketRight", ']', '}'),
    n(28, "Enter"),
    n(29, "ControlLeft"),
    k(30, "KeyA", 'a', 'A'),
    k(31, "KeyS", 's', 'S'),
    k(32, "KeyD", 'd', 'D'),
    k(33, "KeyF", 'f', 'F'),
    k(34, "KeyG", 'g', 'G'),
    k(35, "KeyH", 'h', 'H'),
    k(36, "KeyJ", 'j', 'J'),
    k(37, "KeyK", 'k', 'K'),
    k(38, "KeyL", 'l', 'L'),
    k(39, "Semicolon", ';', ':'),
    k(40, "Quote", '\'', '"'),
    k(41, "Backquote", '`', '~'),
    n(42, "ShiftLeft"),
    k(43, "Backslash", '\\', '|'),
    k(44, "KeyZ", 'z', 'Z'),
    k(45, "KeyX", 'x', 'X'),
    k(46, "KeyC", 'c', 'C'),
    k(47, "KeyV", 'v', 'V'),
    k(48, "KeyB", 'b', 'B'),
    k(49, "KeyN", 'n', 'N'),
    k(50, "KeyM", 'm', 'M'),
    k(51, "Comma", ',', '<'),
    k(52, "Period", '.', '>'),
    k(53, "Slash", '/', '?'),
    n(54, "ShiftRight"),
    k(55, "NumpadMultiply", '*', '*'),
    n(56, "AltLeft"),
    k(57, "Space", ' ', ' '),
    n(58, "CapsLock"),
    n(59, "F1"),
    n(60, "F2"),
    n(61, "F3"),
    n(62, "F4"),
    n(63, "F5"),
    n(64, "F6"),
    n(65, "F7"),
    n(66, "F8"),
    n(67, "F9"),
    n(68, "F10"),
    n(69, "NumLock"),
    n(70, "ScrollLock"),
    k(71, "Numpad7", '7', '7'),
    k(72, "Numpad8", '8', '8'),
    k(73, "Numpad9", '9', '9'),
    k(74, "NumpadSubtract", '-', '-'),
    k(75, "Numpad4", '4', '4'),
    k(76, "Numpad5", '5', '5'),
    k(77, "Numpad6", '6', '6'),
    k(78, "NumpadAdd", '+', '+'),
    k(79, "Numpad1", '1', '1'),
    k(80, "Numpad2", '2', '2'),
    k(81, "Numpad3", '3', '3'),
    k(82, "Numpad0", '0', '0'),
    k(83, "NumpadDecimal", '.', '.'),
    n(87, "F11"),
    n(88, "F12"),
    n(96, "NumpadEnter"),
    n(97, "ControlRight"),
    k(98, "NumpadDivide", '/', '/'),
    n(99, "PrintScreen"),
    n(100, "AltRight"),
    n(102, "Home"),
    n(103, "ArrowUp"),
    n(104, "PageUp"),
    n(105, "ArrowLeft"),
    n(106, "ArrowRight"),
    n(107, "End"),
    n(108, "ArrowDown"),
    n(109, "PageDown"),
    n(110, "Insert"),
    n(111, "Delete"),
    n(125, "MetaLeft"),
    n(126, "MetaRight"),
];

/// The W3C `code` of evdev key `evdev`, if it is a key this table knows.
pub fn code(evdev: u16) -> Option<&'static str> {
    KEYS.iter().find(|k| k.evdev == evdev).map(|k| k.code)
}

/// The key that types `c` on a US layout, and whether Shift is needed: the W3C `code`
/// (letters, digits, punctuation and space; `None` for anything else).
pub fn key_for(c: char) -> Option<(&'static str, bool)> {
    KEYS.iter()
        .filter(|k| !k.code.starts_with("Numpad"))
        .find_map(|k| match k.text {
            Some((plain, _)) if plain == c => Some((k.code, false)),
            Some((_, shifted)) if shifted == c => Some((k.code, true)),
            _ => None,
        })
}

/// A keyboard's modifier state, turning its raw key events into [`Input::Key`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct Keyboard {
    /// Left and right of each: held if either is.
    ctrl: [bool; 2],
    alt: [bool; 2],
    shift: [bool; 2],
    meta: [bool; 2],
}

impl Keyboard {
    /// The modifiers held now.
    pub fn mods(&self) -> Mods {
        let any = |m: [bool; 2]| m[0] || m[1];
        Mods {
            ctrl: any(self.ctrl),
            alt: any(self.alt),
            shift: any(self.shift),
            meta: any(self.meta),
        }
    }

    /// Key `evdev` went down (`down`) or up; `None` for a key the table does not know.
    /// A key-down carries the text it types (none with Ctrl, Alt or Meta held).
    pub fn key(&mut self, evdev: u16, down: bool) -> Option<Input> {
        let key = KEYS.iter().find(|k| k.evdev == evdev)?;
        let side = usize::from(key.code.ends_with("Right"));
        match key.code {
            "ControlLeft" | "ControlRight" => self.ctrl[side] = down,
            "AltLeft" | "AltRight" => self.alt[side] = down,
            "ShiftLeft" | "ShiftRight" => self.shift[side] = down,
            "MetaLeft" | "MetaRight" => self.meta[side] = down,
            _ => {}
        }
        let mods = self.mods();
        let typing = down && !mods.ctrl && !mods.alt && !mods.meta;
        let text = key
            .text
            .filter(|_| typing)
            .map(|(plain, shifted)| if mods.shift { shifted } else { plain }.to_string());
        Some(Input::Key {
            code: key.code.to_string(),
            text,
            down,
            mods,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_cover_the_main_block() {
        for (i, a) in KEYS.iter().enumerate() {
            assert!(
                KEYS[i + 1..].iter().all(|b| b.evdev != a.evdev && b.code != a.code),
                "{}",
                a.code
            );
        }
        assert_eq!(code(30), Some("KeyA"));
        assert_eq!(code(28), Some("Enter"));
        assert_eq!(code(103), Some("ArrowUp"));
        assert_eq!(code(0), None);
    }

    #[test]
    fn shift_types_capitals_and_ctrl_types_nothing() {
        let mut kb = Keyboard::default();
        let text = |i: Option<Input>| match i {
            Some(Input::Key { text, .. }) => text,
            other => panic!("{other:?}"),
        };
        assert_eq!(text(kb.key(30, true)).as_deref(), Some("a"));
        kb.key(54, true);
        assert_eq!(text(kb.key(30, true)).as_deref(), Some("A"));
        assert_eq!(text(kb.key(3, true)).as_deref(), Some("@"));
        kb.key(54, false);
        kb.key(97, true);
        let Some(Input::Key { text: typed, mods, .. }) = kb.key(46, true) else {
            panic!()
        };
        assert_eq!((typed, mods.ctrl, mods.shift), (None, true, false));
        // A key-up types nothing.
        kb.key(97, false);
        assert_eq!(text(kb.key(30, false)), None);
    }

    #[test]
    fn every_typable_character_maps_back_to_its_key() {
        for c in ('a'..='z')
            .chain('A'..='Z')
            .chain('0'..='9')
            .chain("-=[];'`\\,./ !@#$%^&*()_+{}:\"~|<>?".chars())
        {
            let (code, shift) = key_for(c).unwrap_or_else(|| panic!("{c:?}"));
            let evdev = KEYS.iter().find(|k| k.code == code).unwrap().evdev;
            let mut kb = Keyboard::default();
            if shift {
                kb.key(42, true);
            }
            let Some(Input::Key { text, .. }) = kb.key(evdev, true) else {
                panic!()
            };
            assert_eq!(text, Some(c.to_string()), "{c:?} via {code}");
        }
        assert_eq!(key_for('é'), None);
    }
}
