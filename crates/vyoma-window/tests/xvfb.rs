//! The window backend under a virtual X server (Xvfb, the Debian package `xvfb`): what the
//! window shows is the display's screen pixel for pixel, and the X server's keyboard and
//! pointer, driven through XTEST as a user's hands would, reach the app under the pointer
//! and the focused app, in their surfaces' coordinates.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vyoma_display::{Display, Event, Grant, Input, Layout, Phase, Session, Size};
use vyoma_window::Window;
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};
use x11rb::protocol::xtest::ConnectionExt as _;

const SCREEN: Size = Size::new(320, 200);

/// A virtual X server on a free display number, killed when dropped.
struct Xvfb {
    child: Child,
    name: String,
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // SIGTERM, so it removes its socket and lock file.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

fn xvfb() -> Xvfb {
    let n = (90..200)
        .find(|n| {
            !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .expect("a free X display number");
    let name = format!(":{n}");
    let child = Command::new("Xvfb")
        // -noreset: without it the server resets when its last client goes, and a client
        // connecting meanwhile is cut off.
        .args([
            name.as_str(),
            "-screen",
            "0",
            "640x480x24",
            "-nolisten",
            "tcp",
            "-noreset",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start Xvfb ({e}): install the Debian package `xvfb` (./dev test does)"));
    let x = Xvfb { child, name };
    let t0 = Instant::now();
    while x11rb::connect(Some(&x.name)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "Xvfb {} never accepted a connection",
            x.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    x
}

fn grant() -> Grant {
    Grant {
        max: SCREEN,
        keyboard: true,
        pointer: true,
        touch: false,
    }
}

/// Fills `s`'s whole surface with a pattern tinted `tint`, and presents it.
fn paint(s: &Session, tint: u32) {
    let size = s.create_surface(None, None, "t").unwrap();
    let px: Vec<u32> = (0..size.h)
        .flat_map(|y| (0..size.w).map(move |x| tint | ((x * 3) & 0xff) << 8 | (y * 5) & 0xff))
        .collect();
    s.draw(size.rect(), &px).unwrap();
    s.present(&[size.rect()]).unwrap();
}

/// The next event for `s`, waiting up to ten seconds.
fn next(s: &Session) -> Event {
    let t0 = Instant::now();
    loop {
        if let Some(e) = s.next_event() {
            return e;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "no event reached {}", s.app());
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_window_shows_the_screen_and_its_input_reaches_the_apps() {
    let x = xvfb();
    let d = Display::new("window", SCREEN, Layout::Grid, true);
    d.add_app("a", grant());
    d.add_app("b", grant());
    let (mut window, events) = Window::open(Some(&x.name), SCREEN, "vyoma test").unwrap();
    {
        let d: Arc<Display> = d.clone();
        std::thread::spawn(move || events.run(d));
    }
    let (a, b) = (d.attach("a").unwrap(), d.attach("b").unwrap());
    paint(&a, 0x00c0_0000);
    paint(&b, 0x0000_00c0);
    d.tick(&mut window);
    let (screen, _) = d.screenshot(None).unwrap();

    // What the X server has in the window (no window manager: it sits at 0,0), pixel for
    // pixel; the server may take a moment to process the last requests.
    let (conn, n) = x11rb::connect(Some(&x.name)).unwrap();
    let root = conn.setup().roots[n].root;
    let t0 = Instant::now();
    loop {
        let image = conn
            .get_image(ImageFormat::Z_PIXMAP, root, 0, 0, SCREEN.w as u16, SCREEN.h as u16, !0)
            .unwrap()
            .reply()
            .unwrap();
        let shown: Vec<u32> = image
            .data
            .chunks_exact(4)
            .map(|p| u32::from_le_bytes([p[0], p[1], p[2], 0]))
            .collect();
        if shown == screen.pixels {
            break;
        }
        let differ = shown.iter().zip(&screen.pixels).filter(|(s, w)| s != w).count();
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{differ} pixels of the window differ from the screen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // a had the focus (first on the display); a click on b moves it there.
    assert_eq!(next(&a), Event::Focus(true));
    let b_tile = d.status().apps[1].tile.unwrap();
    let (px, py) = (b_tile.x + 40, b_tile.y + 30);
    let fake = |kind: u8, detail: u8| {
        conn.xtest_fake_input(kind, detail, 0, root, px as i16, py as i16, 0)
            .unwrap();
        conn.flush().unwrap();
    };
    const KEY_PRESS: u8 = 2;
    const KEY_RELEASE: u8 = 3;
    const BUTTON_PRESS: u8 = 4;
    const BUTTON_RELEASE: u8 = 5;
    const MOTION: u8 = 6;
    fake(MOTION, 0);
    fake(BUTTON_PRESS, 1);
    fake(BUTTON_RELEASE, 1);
    // In b's surface's coordinates: past its tile's 2-pixel frame.
    let at = |phase| {
        Event::Input(Input::Pointer {
            x: px - b_tile.x - 2,
            y: py - b_tile.y - 2,
            phase,
            button: 0,
        })
    };
    assert_eq!(next(&b), at(Phase::Move));
    assert_eq!(next(&b), at(Phase::Down));
    assert_eq!(next(&b), Event::Focus(true));
    assert_eq!(next(&b), at(Phase::Up));
    assert_eq!(next(&a), Event::Focus(false));
    // The `a` key (evdev 30, X keycode 38) types into the focused app.
    fake(KEY_PRESS, 38);
    fake(KEY_RELEASE, 38);
    match next(&b) {
        Event::Input(Input::Key {
            code, text, down: true, ..
        }) => {
            assert_eq!((code.as_str(), text.as_deref()), ("KeyA", Some("a")));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(next(&b), Event::Input(Input::Key { down: false, .. })));
    // Nothing went to a.
    assert_eq!(a.next_event(), None);
}
