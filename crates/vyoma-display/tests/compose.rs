//! The compositor end to end without a screen: real layouts, surfaces, placeholders and
//! the bar composed into frames and compared pixel for pixel with golden PNGs
//! (`tests/golden`). A missing golden is written and the test fails; `BLESS=1` rewrites
//! them after a deliberate change (look at the pictures before committing).

use std::path::Path;

use vyoma_testkit::golden::Golden;

use vyoma_display::compositor::colour;
use vyoma_display::{Compositor, Frame, Input, Layout, Mods, Phase, Rect, Routed, Size};

const SCREEN: Size = Size::new(320, 200);
const MAX: Size = Size::new(1920, 1080);

fn golden(name: &str, frame: &Frame) {
    Golden::new(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden"), name).check(frame);
}

/// A surface of `size` filled with a pattern: a gradient in its own coordinates, so a
/// misplaced or mis-clipped copy shows.
fn pattern(size: Size, tint: u32) -> Vec<u32> {
    (0..size.h)
        .flat_map(|y| (0..size.w).map(move |x| tint | ((x * 255 / size.w.max(1)) << 8) | (y * 255 / size.h.max(1))))
        .collect()
}

fn painted(c: &mut Compositor, app: &str, size: Size, tint: u32) {
    let got = c.create_surface(app, size, MAX, app).unwrap();
    c.draw(app, got.rect(), &pattern(got, tint)).unwrap();
    c.present(app, &[got.rect()]).unwrap();
}

fn four_apps(layout: Layout) -> Compositor {
    let tiles = matches!(layout, Layout::Tiles(_));
    let mut c = Compositor::new(SCREEN, layout, true);
    for a in ["clock", "paint", "crasher", "text"] {
        c.add_app(a);
    }
    painted(&mut c, "clock", Size::new(120, 60), 0x00c0_0000);
    painted(&mut c, "paint", Size::new(400, 400), 0x0000_0000);
    c.set_placeholder("crasher", Some("restarting... 2/5")).unwrap();
    if !tiles {
        c.focus("paint").unwrap();
    }
    c
}

#[test]
fn a_grid_with_surfaces_a_placeholder_an_empty_tile_and_the_bar() {
    let mut c = four_apps(Layout::Grid);
    assert!(!c.compose().is_empty());
    golden("grid", c.frame());
}

#[test]
fn kiosk_shows_the_focused_app_alone_and_follows_focus() {
    let mut c = four_apps(Layout::Kiosk);
    c.compose();
    golden("kiosk-paint", c.frame());
    c.focus("crasher").unwrap();
    c.compose();
    golden("kiosk-placeholder", c.frame());
}

#[test]
fn only_what_was_presented_is_composed_again() {
    let mut c = four_apps(Layout::Grid);
    c.compose();
    assert!(c.compose().is_empty(), "nothing changed, nothing redrawn");
    let before = c.frame().clone();
    // The app draws a 10x10 square but presents only its left half.
    c.draw("clock", Rect::new(5, 5, 10, 10), &[0x00ff_ffff; 100]).unwrap();
    c.present("clock", &[Rect::new(5, 5, 5, 10)]).unwrap();
    let damaged = c.compose();
    let clock = c.tiles().into_iter().find(|(a, _)| a == "clock").unwrap().1;
    let (x, y) = (clock.x + 2 + 5, clock.y + 2 + 5);
    assert_eq!(damaged, [Rect::new(x, y, 5, 10)]);
    let changed: Vec<usize> = (0..before.pixels.len())
        .filter(|i| before.pixels[*i] != c.frame().pixels[*i])
        .collect();
    assert_eq!(changed.len(), 50, "exactly the presented half");
    assert!(changed.iter().all(|i| c.frame().pixels[*i] == 0x00ff_ffff));
    // Damage outside the surface, or while a placeholder shows, composes nothing.
    c.present("clock", &[Rect::new(500, 500, 10, 10)]).unwrap();
    c.set_placeholder("text", None).unwrap();
    assert!(c.compose().is_empty());
}

#[test]
fn a_crash_placeholder_replaces_the_surface_at_the_next_frame_and_leaves_the_rest() {
    let mut c = four_apps(Layout::Grid);
    c.compose();
    let before = c.frame().clone();
    c.set_placeholder("paint", Some("failed")).unwrap();
    let damaged = c.compose();
    let paint = c.tiles().into_iter().find(|(a, _)| a == "paint").unwrap().1;
    assert!(
        damaged.iter().any(|r| r.intersect(paint) == paint),
        "the whole tile: {damaged:?}"
    );
    let clock = c.tiles().into_iter().find(|(a, _)| a == "clock").unwrap().1;
    for y in clock.y..clock.y + clock.h as i32 {
        for x in clock.x..clock.x + clock.w as i32 {
            assert_eq!(before.at(x as u32, y as u32), c.frame().at(x as u32, y as u32));
        }
    }
    golden("grid-paint-failed", c.frame());
    // Back again once the app draws.
    c.set_placeholder("paint", None).unwrap();
    c.compose();
    assert_eq!(c.frame(), &before);
}

#[test]
fn tiles_show_only_the_named_apps_and_refuse_focus_elsewhere() {
    let mut c = four_apps("tiles:text,clock".parse().unwrap());
    c.compose();
    golden("tiles", c.frame());
    assert!(c.is_visible("clock") && !c.is_visible("paint"));
    assert_eq!(c.focused(), Some("clock"), "the first tiled app to appear has focus");
    let e = c.focus("paint").unwrap_err().to_string();
    assert_eq!(
        e,
        "app `paint` is not shown by the layout `tiles:text,clock`: add it to the tiles, or change the layout"
    );
}

fn key(code: &str, down: bool, mods: Mods) -> Input {
    Input::Key {
        code: code.into(),
        text: None,
        down,
        mods,
    }
}

#[test]
fn keys_go_to_the_focused_app_and_the_chord_never_reaches_one() {
    let mut c = four_apps(Layout::Grid);
    let chord = Mods {
        ctrl: true,
        alt: true,
        ..Mods::default()
    };
    match c.route(key("KeyA", true, Mods::default())) {
        Routed::App { app, .. } => assert_eq!(app, "paint"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.route(key("Tab", true, chord)),
        Routed::FocusCycled(Some("crasher".into()))
    );
    assert_eq!(c.route(key("Tab", false, chord)), Routed::Nowhere, "the chord's key-up");
    assert_eq!(
        c.route(key("Tab", true, chord)),
        Routed::FocusCycled(Some("text".into()))
    );
    assert_eq!(c.route(key("Tab", false, chord)), Routed::Nowhere);
    assert_eq!(
        c.route(key("Tab", true, chord)),
        Routed::FocusCycled(Some("clock".into()))
    );
    assert_eq!(c.route(key("Tab", false, chord)), Routed::Nowhere);
    // A plain Tab is the app's.
    assert!(matches!(c.route(key("Tab", true, Mods::default())), Routed::App { app, .. } if app == "clock"));
    assert!(matches!(
        c.route(key("Tab", false, Mods::default())),
        Routed::App { .. }
    ));
}

#[test]
fn pointer_and_touch_go_to_the_surface_under_them_in_its_coordinates() {
    let mut c = four_apps(Layout::Grid);
    let tiles = c.tiles();
    let clock = tiles.iter().find(|(a, _)| a == "clock").unwrap().1;
    let text = tiles.iter().find(|(a, _)| a == "text").unwrap().1;
    let press = Input::Pointer {
        x: clock.x + 12,
        y: clock.y + 7,
        phase: Phase::Down,
        button: 0,
    };
    assert_eq!(
        c.route(press),
        Routed::App {
            app: "clock".into(),
            event: Input::Pointer {
                x: 10,
                y: 5,
                phase: Phase::Down,
                button: 0
            }
        }
    );
    assert_eq!(c.focused(), Some("clock"), "a press focuses");
    // A drag stays with the app it started in, even over another tile, until released.
    let over_text = Input::Pointer {
        x: text.x + 20,
        y: text.y + 20,
        phase: Phase::Move,
        button: 0,
    };
    assert!(matches!(c.route(over_text.clone()), Routed::App { app, .. } if app == "clock"));
    let up = Input::Pointer {
        x: text.x + 20,
        y: text.y + 20,
        phase: Phase::Up,
        button: 0,
    };
    assert!(matches!(c.route(up), Routed::App { app, .. } if app == "clock"));
    assert!(matches!(c.route(over_text), Routed::App { app, .. } if app == "text"));
    // The bar and the frames belong to no app.
    let on_bar = Input::Touch {
        id: 3,
        x: 5,
        y: 5,
        phase: Phase::Down,
    };
    assert_eq!(c.route(on_bar), Routed::Nowhere);
    let finger = Input::Touch {
        id: 1,
        x: text.x + 2,
        y: text.y + 2,
        phase: Phase::Down,
    };
    assert_eq!(
        c.route(finger),
        Routed::App {
            app: "text".into(),
            event: Input::Touch {
                id: 1,
                x: 0,
                y: 0,
                phase: Phase::Down
            }
        }
    );
}

#[test]
fn surfaces_are_capped_by_the_grant_and_hold_memory_only_once_drawn() {
    let mut c = Compositor::new(SCREEN, Layout::Grid, false);
    c.add_app("a");
    let got = c
        .create_surface("a", Size::new(4000, 100), Size::new(800, 600), "a")
        .unwrap();
    assert_eq!(got, Size::new(800, 100));
    assert_eq!(c.surface_bytes("a"), 0, "nothing drawn, nothing allocated");
    c.draw("a", Rect::new(0, 0, 1, 1), &[1]).unwrap();
    assert_eq!(c.surface_bytes("a"), 800 * 100 * 4);
    assert_eq!(
        c.draw("a", Rect::new(0, 0, 2, 2), &[1]).unwrap_err().to_string(),
        "app `a` drew 1 pixels into 2x2+0+0, which holds 4"
    );
    assert!(c.create_surface("a", Size::new(0, 10), MAX, "a").is_err());
    c.destroy_surface("a");
    assert_eq!(c.surface_bytes("a"), 0);
    assert_eq!(
        c.draw("a", Rect::new(0, 0, 1, 1), &[1]).unwrap_err().to_string(),
        "app `a` has no surface: create one first"
    );
    c.remove_app("a");
    assert!(c.create_surface("a", Size::new(1, 1), MAX, "a").is_err());
    // Drawing past the surface's edge is clipped, never a panic.
    c.add_app("b");
    c.create_surface("b", Size::new(10, 10), MAX, "b").unwrap();
    c.draw("b", Rect::new(-5, 8, 20, 5), &[7; 100]).unwrap();
    let (f, title) = c.surface("b").unwrap();
    assert_eq!(title, "b");
    assert_eq!(f.pixels.iter().filter(|p| **p == 7).count(), 20);
}

#[test]
fn removing_the_focused_app_focuses_the_previous_one_and_redraws() {
    let mut c = four_apps(Layout::Grid);
    c.focus("clock").unwrap();
    c.focus("text").unwrap();
    c.compose();
    c.remove_app("text");
    assert_eq!(c.focused(), Some("clock"));
    assert!(!c.compose().is_empty());
    assert_eq!(c.tiles().len(), 3);
    // The focused tile's frame is the accent colour.
    let clock = c.tiles().into_iter().find(|(a, _)| a == "clock").unwrap().1;
    assert_eq!(c.frame().at(clock.x as u32, clock.y as u32), colour::ACCENT);
}

/// Found by the `display_calls` fuzz target: a drag that ends far off the screen.
#[test]
fn a_drag_far_off_the_screen_saturates_instead_of_wrapping() {
    let mut c = four_apps(Layout::Grid);
    let clock = c.tiles().into_iter().find(|(a, _)| a == "clock").unwrap().1;
    let at = |x, y, phase| Input::Pointer { x, y, phase, button: 0 };
    assert!(matches!(
        c.route(at(clock.x + 5, clock.y + 5, Phase::Down)),
        Routed::App { .. }
    ));
    match c.route(at(i32::MIN, i32::MAX, Phase::Move)) {
        Routed::App { app, event } => {
            assert_eq!(app, "clock");
            assert_eq!(event, at(i32::MIN, i32::MAX - clock.y - 2, Phase::Move));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ticks_answer_visible_apps_frame_requests_and_do_nothing_when_nothing_changed() {
    let mut c = four_apps(Layout::Kiosk);
    // The first tick composes everything and tells the shown app its size.
    let t = c.tick();
    assert!(!t.damaged.is_empty());
    assert_eq!(t.resized, [("paint".to_string(), Size::new(320, 180))]);
    assert!(t.frames.is_empty());
    // Nothing damaged, nothing asked: a tick does nothing at all.
    assert_eq!(c.tick(), vyoma_display::Tick::default());
    // The visible app asks for a frame: answered once, at the next tick.
    c.request_frame("paint").unwrap();
    c.request_frame("clock").unwrap();
    let t = c.tick();
    assert_eq!(t.frames, ["paint"]);
    assert!(t.damaged.is_empty());
    assert_eq!(
        c.tick(),
        vyoma_display::Tick::default(),
        "the hidden clock's request waits"
    );
    // Shown (focused, in kiosk), the clock gets its size and its frame.
    c.focus("clock").unwrap();
    let t = c.tick();
    assert_eq!(t.resized, [("clock".to_string(), Size::new(320, 180))]);
    assert_eq!(t.frames, ["clock"]);
    // A layout change resizes what is shown, once.
    c.set_layout(Layout::Grid);
    let t = c.tick();
    let mut told: Vec<&str> = t.resized.iter().map(|(a, _)| a.as_str()).collect();
    told.sort_unstable();
    assert_eq!(told, ["clock", "crasher", "paint", "text"]);
    assert!(t.resized.iter().all(|(_, s)| s.w < 160 && s.h < 90));
    assert!(c.tick().resized.is_empty());
    assert!(c.request_frame("nobody").is_err());
}

#[test]
fn drawing_bytes_is_drawing_their_pixels() {
    let size = Size::new(20, 10);
    for rect in [
        Rect::new(0, 0, 20, 10),
        Rect::new(-3, 4, 9, 9),
        Rect::new(15, -2, 10, 5),
        Rect::new(40, 40, 2, 2),
    ] {
        let px = pattern(rect.size(), 0x00ab_0000);
        let bytes: Vec<u8> = px.iter().flat_map(|p| p.to_le_bytes()).collect();
        let (mut a, mut b) = (
            Compositor::new(SCREEN, Layout::Kiosk, false),
            Compositor::new(SCREEN, Layout::Kiosk, false),
        );
        for c in [&mut a, &mut b] {
            c.add_app("x");
            c.create_surface("x", size, MAX, "x").unwrap();
        }
        a.draw("x", rect, &px).unwrap();
        b.draw_bytes("x", rect, &bytes).unwrap();
        assert_eq!(a.surface("x").unwrap(), b.surface("x").unwrap(), "{rect}");
        // A byte count that is not whole pixels, or not the rectangle's, is refused.
        assert!(b.draw_bytes("x", rect, &bytes[1..]).is_err());
    }
}

#[test]
fn a_drawn_pointer_follows_the_mouse_over_everything_and_leaves_no_trail() {
    let mut c = four_apps(Layout::Grid);
    c.compose();
    let before = c.frame().clone();
    c.show_cursor(true);
    assert_eq!(c.cursor(), Some((160, 100)), "from the screen's middle");
    c.compose();
    golden("cursor-middle", c.frame());
    // Moved over the paint app's surface: drawn there, and its old place is the screen's
    // again; the app gets the move as before.
    let routed = c.route(Input::Pointer {
        x: 200,
        y: 40,
        phase: Phase::Move,
        button: 0,
    });
    assert!(
        matches!(routed, Routed::App { ref app, .. } if app == "paint"),
        "{routed:?}"
    );
    let damaged = c.compose();
    assert!(
        damaged.iter().all(|r| r.w <= 11 && r.h <= 17),
        "only the arrow's places: {damaged:?}"
    );
    golden("cursor-over-paint", c.frame());
    // Kept on the screen; hidden again, the screen is as it was.
    c.route(Input::Pointer {
        x: 5000,
        y: -7,
        phase: Phase::Move,
        button: 0,
    });
    assert_eq!(c.cursor(), Some((319, 0)));
    c.show_cursor(true);
    assert_eq!(c.cursor(), Some((319, 0)), "a second mouse moves the same pointer");
    c.show_cursor(false);
    c.compose();
    assert_eq!(c.frame(), &before, "no trail");
}
