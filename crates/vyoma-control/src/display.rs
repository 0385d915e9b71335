//! The operator's display commands: `display`, `layout`, `focus`, `screenshot` and `input`
//! as words ([`parse_input`]), their replies ([`DisplayReport`], [`ScreenshotReport`]) and
//! how the console prints them.

use serde::{Deserialize, Serialize};
use vyoma_display::{Input, Mods, Phase};

use crate::render::terminal_safe;

/// How `input` is written.
pub const INPUT_USAGE: &str = "input APP|* key CODE [ctrl+alt+shift+meta] | text TEXT | pointer X Y [move|down|up|click] [BUTTON] | touch ID X Y down|move|up";

/// Parses `input`'s arguments: the app (`*`: as from a device, routed by the display) and
/// the events (a key is pressed and released; text is one press per character; a click
/// is a press and a release).
pub fn parse_input(args: &[&str], rest_of_line: &str) -> Result<(Option<String>, Vec<Input>), String> {
    let usage = |what: &str| format!("{what}: {INPUT_USAGE}");
    let (target, kind) = match args {
        [t, k, ..] => (*t, *k),
        [_] => return Err(usage("`input` needs an event")),
        [] => return Err(usage("`input` needs an app (or `*`) and an event")),
    };
    let app = (target != "*").then(|| target.to_string());
    let num = |s: &str, what: &str| -> Result<i32, String> {
        s.parse().map_err(|_| usage(&format!("`{s}` is not a {what}")))
    };
    let events = match (kind, &args[2..]) {
        ("key", [code, rest @ ..]) if rest.len() <= 1 => {
            let mods = rest.first().map(|m| parse_mods(m)).transpose()?.unwrap_or_default();
            let key = |down| Input::Key {
                code: code.to_string(),
                text: None,
                down,
                mods,
            };
            vec![key(true), key(false)]
        }
        ("text", [_, ..]) => {
            // The text is the rest of the line as typed, spaces and all.
            let text = rest_of_line
                .trim_start()
                .strip_prefix(target)
                .and_then(|r| r.trim_start().strip_prefix("text"))
                .map(|r| r.strip_prefix(' ').unwrap_or(r))
                .unwrap_or_default();
            text.chars().flat_map(typed).collect()
        }
        ("pointer", [x, y, rest @ ..]) if rest.len() <= 2 => {
            let (x, y) = (num(x, "pixel x")?, num(y, "pixel y")?);
            let button = match rest.get(1) {
                Some(b) => match b.parse::<u8>() {
                    Ok(n) if n <= 2 => n,
                    _ => return Err(usage(&format!("`{b}` is not a button (0 left, 1 middle, 2 right)"))),
                },
                None => 0,
            };
            let at = |phase| Input::Pointer { x, y, phase, button };
            match rest.first().copied().unwrap_or("move") {
                "click" => vec![at(Phase::Down), at(Phase::Up)],
                p => vec![at(parse_phase(p)?)],
            }
        }
        ("touch", [id, x, y, phase]) => vec![Input::Touch {
            id: id
                .parse()
                .map_err(|_| usage(&format!("`{id}` is not a finger number")))?,
            x: num(x, "pixel x")?,
            y: num(y, "pixel y")?,
            phase: parse_phase(phase)?,
        }],
        ("key" | "text" | "pointer" | "touch", _) => return Err(usage(&format!("wrong arguments to `{kind}`"))),
        (other, _) => return Err(usage(&format!("`{other}` is not an input event"))),
    };
    if events.is_empty() {
        return Err(usage("`text` needs the text to type"));
    }
    Ok((app, events))
}

/// Each phase by its name, in the console and the API alike.
const PHASES: [(&str, Phase); 3] = [("down", Phase::Down), ("move", Phase::Move), ("up", Phase::Up)];

fn parse_phase(p: &str) -> Result<Phase, String> {
    PHASES
        .iter()
        .find(|(name, _)| *name == p)
        .map(|(_, phase)| *phase)
        .ok_or_else(|| format!("`{p}` is not a phase: write down, move or up ({INPUT_USAGE})"))
}

fn phase_name(p: Phase) -> &'static str {
    PHASES
        .iter()
        .find(|(_, phase)| *phase == p)
        .map_or("move", |(name, _)| name)
}

fn parse_mods(s: &str) -> Result<Mods, String> {
    let mut m = Mods::default();
    for part in s.split('+') {
        match part {
            "ctrl" => m.ctrl = true,
            "alt" => m.alt = true,
            "shift" => m.shift = true,
            "meta" => m.meta = true,
            other => {
                return Err(format!(
                    "`{other}` is not a modifier: join ctrl, alt, shift and meta with `+` ({INPUT_USAGE})"
                ));
            }
        }
    }
    Ok(m)
}

/// The key presses that type `c` on a US layout: its W3C `code` (`Unidentified` for
/// characters no key types), Shift when it needs it, the text on the key-down.
fn typed(c: char) -> [Input; 2] {
    let (code, shift) = vyoma_display::keymap::key_for(c).unwrap_or(("Unidentified", false));
    let mods = Mods {
        shift,
        ..Mods::default()
    };
    [
        Input::Key {
            code: code.to_string(),
            text: Some(c.to_string()),
            down: true,
            mods,
        },
        Input::Key {
            code: code.to_string(),
            text: None,
            down: false,
            mods,
        },
    ]
}

/// An input event in the API's JSON (`POST /v1/display/input`'s `events`): `{"key":
/// {"code": "KeyA", "text": "a", "down": true, "mods": ["shift"]}}`, `{"pointer": {"x": 10,
/// "y": 20, "phase": "down", "button": 0}}`, `{"touch": {"id": 1, "x": 5, "y": 6, "phase":
/// "move"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WireInput {
    /// A key.
    Key {
        /// W3C `code`.
        code: String,
        /// The text it types.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// Pressed or released.
        down: bool,
        /// Modifiers held: any of `ctrl`, `alt`, `shift`, `meta`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mods: Vec<String>,
    },
    /// The pointer.
    Pointer {
        /// x.
        x: i32,
        /// y.
        y: i32,
        /// `down`, `move` or `up`.
        phase: String,
        /// 0 left, 1 middle, 2 right.
        #[serde(default)]
        button: u8,
    },
    /// A finger.
    Touch {
        /// Which finger.
        id: u32,
        /// x.
        x: i32,
        /// y.
        y: i32,
        /// `down`, `move` or `up`.
        phase: String,
    },
}

impl From<&Input> for WireInput {
    fn from(i: &Input) -> WireInput {
        match i.clone() {
            Input::Key { code, text, down, mods } => WireInput::Key {
                code,
                text,
                down,
                mods: [
                    ("ctrl", mods.ctrl),
                    ("alt", mods.alt),
                    ("shift", mods.shift),
                    ("meta", mods.meta),
                ]
                .into_iter()
                .filter(|(_, on)| *on)
                .map(|(n, _)| n.to_string())
                .collect(),
            },
            Input::Pointer { x, y, phase, button } => WireInput::Pointer {
                x,
                y,
                phase: phase_name(phase).into(),
                button,
            },
            Input::Touch { id, x, y, phase } => WireInput::Touch {
                id,
                x,
                y,
                phase: phase_name(phase).into(),
            },
        }
    }
}

impl TryFrom<WireInput> for Input {
    type Error = String;

    fn try_from(w: WireInput) -> Result<Input, String> {
        Ok(match w {
            WireInput::Key { code, text, down, mods } => Input::Key {
                code,
                text,
                down,
                mods: if mods.is_empty() {
                    Mods::default()
                } else {
                    parse_mods(&mods.join("+"))?
                },
            },
            WireInput::Pointer { x, y, phase, button } => {
                if button > 2 {
                    return Err(format!("`{button}` is not a button (0 left, 1 middle, 2 right)"));
                }
                Input::Pointer {
                    x,
                    y,
                    phase: parse_phase(&phase)?,
                    button,
                }
            }
            WireInput::Touch { id, x, y, phase } => Input::Touch {
                id,
                x,
                y,
                phase: parse_phase(&phase)?,
            },
        })
    }
}

/// `display`: the screen, its layout and focus, and every app on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayReport {
    /// The backend showing it (`headless`, `drm`, `window`).
    pub backend: String,
    /// Screen width in pixels.
    pub width: u32,
    /// Screen height in pixels.
    pub height: u32,
    /// The layout (`kiosk`, `grid`, `tiles:A,B`).
    pub layout: String,
    /// The app with the keyboard focus.
    pub focused: Option<String>,
    /// Frames shown since start.
    pub frames: u64,
    /// The apps granted the display, in order.
    pub apps: Vec<DisplayApp>,
}

/// One app on the display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayApp {
    /// The app.
    pub app: String,
    /// Its tile, `[x, y, width, height]`, if shown.
    pub tile: Option<[i64; 4]>,
    /// Its surface's `[width, height]`, if it has one.
    pub surface: Option<[u32; 2]>,
    /// The surface's title (the app's text).
    pub title: Option<String>,
    /// What its tile shows instead of the surface.
    pub placeholder: Option<String>,
    /// Input events dropped because it did not take them in time.
    pub dropped_events: u64,
}

/// `screenshot`: where the picture went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenshotReport {
    /// The app whose surface it is; none: the whole screen.
    pub app: Option<String>,
    /// The PNG file written.
    pub path: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Size of the file.
    pub bytes: u64,
}

/// The line an instance says at start about its display: `display: drm 1280x800, layout
/// grid` (`vyoma run` and PID 1 alike). The layout may name apps: made terminal-safe.
pub fn render_display_started(
    backend: &str,
    size: vyoma_display::Size,
    layout: &vyoma_display::Layout,
    bar: bool,
) -> String {
    format!(
        "display: {backend} {size}, layout {}{}",
        terminal_safe(&layout.to_string()),
        if bar { "" } else { ", no status bar" }
    )
}

/// The console's text for `display`.
pub fn render_display(r: &DisplayReport) -> String {
    let mut s = format!(
        "screen {}x{} ({}), layout {}, focus {}, {} frames\n",
        r.width,
        r.height,
        r.backend,
        terminal_safe(&r.layout),
        r.focused.as_deref().map_or("none".into(), terminal_safe),
        r.frames
    );
    s.push_str(&format!("{:<20} {:<20} {:<10} {}\n", "APP", "TILE", "SURFACE", "SHOWS"));
    for a in &r.apps {
        let tile = a
            .tile
            .map_or("hidden".to_string(), |[x, y, w, h]| format!("{w}x{h}+{x}+{y}"));
        let surface = a.surface.map_or("-".to_string(), |[w, h]| format!("{w}x{h}"));
        let shows = match (&a.placeholder, &a.title) {
            (Some(p), _) => format!("placeholder: {}", terminal_safe(p)),
            (None, Some(t)) if a.surface.is_some() => format!("surface \"{}\"", terminal_safe(t)),
            _ => "background".to_string(),
        };
        let dropped = if a.dropped_events > 0 {
            format!(" ({} input events dropped)", a.dropped_events)
        } else {
            String::new()
        };
        s.push_str(&format!(
            "{:<20} {tile:<20} {surface:<10} {shows}{dropped}\n",
            terminal_safe(&a.app)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_line_names_the_backend_size_and_layout_escaped() {
        use vyoma_display::{Layout, Size};
        let tiles = Layout::Tiles(vec!["clock".into(), "x\x1b[2J".into()]);
        assert_eq!(
            render_display_started("drm", Size::new(1280, 800), &tiles, false),
            format!(
                "display: drm 1280x800, layout tiles:clock,{}, no status bar",
                terminal_safe("x\x1b[2J")
            )
        );
        assert!(!render_display_started("drm", Size::new(1, 1), &tiles, true).contains('\x1b'));
        assert_eq!(
            render_display_started("headless", Size::new(1280, 800), &Layout::Grid, true),
            "display: headless 1280x800, layout grid"
        );
    }

    fn parse(line: &str) -> Result<(Option<String>, Vec<Input>), String> {
        let args: Vec<&str> = line.split_whitespace().collect();
        parse_input(&args, line)
    }

    #[test]
    fn keys_text_pointer_and_touch() {
        let (app, ev) = parse("paint key Tab ctrl+alt").unwrap();
        assert_eq!(app.as_deref(), Some("paint"));
        assert_eq!(ev.len(), 2);
        assert!(matches!(&ev[0], Input::Key { code, down: true, mods, .. } if code == "Tab" && mods.ctrl && mods.alt));
        let (app, ev) = parse("*   text Hi  you").unwrap();
        assert_eq!(app, None);
        let typed: String = ev
            .iter()
            .filter_map(|e| match e {
                Input::Key { text: Some(t), .. } => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(typed, "Hi  you");
        assert!(matches!(&ev[0], Input::Key { code, mods, .. } if code == "KeyH" && mods.shift));
        let (_, ev) = parse("paint pointer 10 -3 click 2").unwrap();
        assert_eq!(
            ev,
            vec![
                Input::Pointer {
                    x: 10,
                    y: -3,
                    phase: Phase::Down,
                    button: 2
                },
                Input::Pointer {
                    x: 10,
                    y: -3,
                    phase: Phase::Up,
                    button: 2
                }
            ]
        );
        let (_, ev) = parse("paint touch 1 5 6 move").unwrap();
        assert_eq!(
            ev,
            vec![Input::Touch {
                id: 1,
                x: 5,
                y: 6,
                phase: Phase::Move
            }]
        );
    }

    #[test]
    fn mistakes_say_what_and_how() {
        for (line, want) in [
            ("", "needs an app"),
            ("paint", "needs an event"),
            ("paint wiggle", "`wiggle` is not an input event"),
            ("paint key", "wrong arguments to `key`"),
            ("paint key KeyA hyper", "`hyper` is not a modifier"),
            ("paint pointer 1", "wrong arguments to `pointer`"),
            ("paint pointer x 1", "`x` is not a pixel x"),
            ("paint pointer 1 1 jump", "`jump` is not a phase"),
            ("paint pointer 1 1 down 7", "`7` is not a button"),
            ("paint touch a 1 1 down", "`a` is not a finger number"),
            ("paint text", "wrong arguments to `text`"),
        ] {
            let e = parse(line).unwrap_err();
            assert!(e.contains(want), "{line:?}: {e}");
            assert!(e.contains("input APP|*"), "{line:?}: no usage in {e}");
        }
    }

    #[test]
    fn the_report_escapes_app_text() {
        let r = DisplayReport {
            backend: "headless".into(),
            width: 64,
            height: 32,
            layout: "grid".into(),
            focused: Some("clock".into()),
            frames: 3,
            apps: vec![DisplayApp {
                app: "clock".into(),
                tile: Some([0, 20, 64, 12]),
                surface: Some([60, 8]),
                title: Some("\u{1b}[2Jevil".into()),
                placeholder: None,
                dropped_events: 2,
            }],
        };
        let text = render_display(&r);
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("64x12+0+20"), "{text}");
        assert!(text.contains("(2 input events dropped)"), "{text}");
    }
}
