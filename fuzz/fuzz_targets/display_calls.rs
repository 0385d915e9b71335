//! Any sequence of what apps and the operator can ask of the compositor: surfaces of any
//! size against any grant, draws and damage at any coordinates (negative, huge, past the
//! surface) with right and wrong pixel counts, placeholders with any text, any layout
//! text, focus, added and removed apps, input anywhere, frame requests and ticks:
//! nothing panics, every composed rectangle lies on the screen, the frame keeps its size,
//! no surface holds more than its grant, and only visible apps get frames.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vyoma_display::{Compositor, Input, Layout, Mods, Phase, Rect, Size};

const APPS: [&str; 4] = ["a", "b", "c", "ghost"];
const SCREEN: Size = Size::new(64, 48);

fn coord(b: u8) -> i32 {
    // Mostly on screen, sometimes far off either side.
    match b % 8 {
        0 => i32::MIN + b as i32,
        1 => i32::MAX - b as i32,
        2 => -(b as i32),
        _ => b as i32 % 80,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = Compositor::new(SCREEN, Layout::Grid, data.first().is_some_and(|b| b % 2 == 0));
    for a in &APPS[..3] {
        c.add_app(a);
    }
    let mut maxes = std::collections::BTreeMap::new();
    let mut bytes = data.iter().copied();
    let mut next = || bytes.next();
    while let (Some(op), Some(x), Some(y), Some(z)) = (next(), next(), next(), next()) {
        let app = APPS[usize::from(x) % APPS.len()];
        match op % 12 {
            0 => {
                let max = Size::new(u32::from(z % 40), u32::from(y % 40));
                let asked = Size::new(u32::from(y), u32::from(z));
                if c.create_surface(app, asked, max, app).is_ok() {
                    maxes.insert(app, max);
                }
            }
            1 => {
                let r = Rect::new(coord(y), coord(z), u32::from(x % 50), u32::from(op % 30));
                let n = if z % 5 == 0 { usize::from(y) } else { r.size().area() as usize };
                if y % 2 == 0 {
                    let _ = c.draw(app, r, &vec![u32::from(op) << 8; n]);
                } else {
                    // As apps send them: bytes, sometimes not whole pixels.
                    let _ = c.draw_bytes(app, r, &vec![op; n * 4 + usize::from(z % 4 == 1)]);
                }
            }
            2 => {
                let r = Rect::new(coord(y), coord(z), u32::from(x) * 1000, u32::from(op) * 1000);
                let _ = c.present(app, &[r, Rect::new(coord(z), coord(y), 3, 3)]);
            }
            3 => {
                let text = String::from_utf8_lossy(&[x, y, z, op, 0xe2, 0x80, 0xa6]).into_owned();
                let _ = c.set_placeholder(app, (z % 3 != 0).then_some(text.as_str()));
            }
            4 => {
                let (px, py) = (coord(y), coord(z));
                let phase = [Phase::Down, Phase::Move, Phase::Up][usize::from(x) % 3];
                let input = match op % 3 {
                    0 => Input::Pointer { x: px, y: py, phase, button: x % 3 },
                    1 => Input::Touch { id: u32::from(z % 4), x: px, y: py, phase },
                    _ => Input::Key {
                        code: ["Tab", "KeyA", "Enter", ""][usize::from(y) % 4].to_string(),
                        text: None,
                        down: z % 2 == 0,
                        mods: Mods { ctrl: x % 2 == 0, alt: y % 2 == 0, ..Mods::default() },
                    },
                };
                let _ = c.route(input);
            }
            5 => {
                let text = String::from_utf8_lossy(&[b't', b'i', b'l', b'e', b's', b':', x, b',', y]).into_owned();
                let choice = ["kiosk", "grid", text.as_str()][usize::from(z) % 3];
                if let Ok(l) = choice.parse::<Layout>() {
                    c.set_layout(l);
                }
            }
            6 => {
                let _ = c.focus(app);
            }
            7 => c.cycle_focus(),
            8 => {
                if z % 2 == 0 {
                    c.remove_app(app);
                    maxes.remove(app);
                } else {
                    c.add_app(app);
                }
            }
            9 => c.destroy_surface(app),
            10 => {
                let _ = c.request_frame(app);
            }
            _ => {
                let shown: Vec<String> = c.tiles().into_iter().map(|(a, _)| a).collect();
                let t = c.tick();
                assert!(t.frames.iter().all(|a| shown.contains(a)), "a hidden app got a frame");
                assert!(t.damaged.iter().all(|r| r.intersect(SCREEN.rect()) == *r));
            }
        }
        for r in c.compose() {
            assert_eq!(r.intersect(SCREEN.rect()), r, "composed {r} off the screen");
        }
        assert_eq!(c.frame().pixels.len() as u64, SCREEN.area());
        for (app, max) in &maxes {
            assert!(c.surface_bytes(app) <= max.area() * 4);
        }
    }
});
