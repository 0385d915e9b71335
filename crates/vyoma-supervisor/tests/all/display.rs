//! The display end to end: real GUI components (`clock`, `paint`, `notes`, `smash` from
//! `apps/`) draw on a headless display driven by its own clock; the operator's input
//! changes what they draw; screenshots match golden PNGs (`golden/`, pixel-exact; a missing
//! one is written and the test fails; `BLESS=1` rewrites them); an app that traps shows its
//! placeholder while the others keep drawing, and comes back.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use vyoma_display::backend::Headless;
use vyoma_display::{Display, Frame, Input, Layout, Phase, Rect, Size};
use vyoma_lifecycle::AppState;
use vyoma_runtime::RuntimeConfig;
use vyoma_supervisor::{RealClock, Supervisor};
use vyoma_testkit::golden::Golden;
use vyoma_testkit::shared_cache;

use crate::common::{LONG, app, log_text, wait, wait_log};

const SCREEN: Size = Size::new(480, 300);

/// The apps in `root`, on a headless `SCREEN` under `layout` (with the status bar), its
/// clock running, every app started.
async fn on_screen(root: &Path, layout: Layout) -> (Supervisor, Arc<Display>) {
    on_screen_of(root, SCREEN, layout).await
}

async fn on_screen_of(root: &Path, size: Size, layout: Layout) -> (Supervisor, Arc<Display>) {
    let config = RuntimeConfig {
        cache_dir: Some(shared_cache(env!("CARGO_TARGET_TMPDIR"))),
        ..RuntimeConfig::default()
    };
    let mut booted = vyoma_supervisor::prepare(root, config, Arc::new(RealClock::default()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let d = Display::new("headless", size, layout, true);
    assert!(booted.supervisor.show_on(d.clone()));
    tokio::spawn(d.clone().run(Box::new(Headless::default())));
    booted.start(None).await;
    (booted.supervisor, d)
}

fn screen(d: &Display) -> Frame {
    d.screenshot(None).expect("a screenshot of the screen").0
}

/// Waits until the screen is `golden/NAME.png`, pixel for pixel. Writing one (missing, or
/// `BLESS=1`) waits until the screen has not changed for half a second first.
async fn golden(d: &Display, name: &str) {
    let g = Golden::new(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/all/golden"), name);
    let Some(want) = g.want() else {
        let mut last = screen(d);
        let mut same = 0;
        while same < 20 {
            tokio::time::sleep(Duration::from_millis(25)).await;
            let now = screen(d);
            same = if now == last { same + 1 } else { 0 };
            last = now;
        }
        return g.write(&last);
    };
    let mut got = screen(d);
    let matched = tokio::time::timeout(LONG, async {
        while got != want {
            tokio::time::sleep(Duration::from_millis(20)).await;
            got = screen(d);
        }
    })
    .await;
    if matched.is_err() {
        g.mismatch(&format!("{name}: the screen, for a minute,"), &want, &got);
    }
}

/// The kiosk set as the tests run it: the clock shows a fixed time, `smash` waits long
/// before it traps unless `smash_after_ms` says otherwise.
fn kiosk(root: &Path, smash_after_ms: u64) {
    let grant = |input: &str| {
        format!("[capabilities]\ndisplay = {{ max = \"1280x800\" }}\n{input}\n[limits]\nmemory = \"16 MiB\"\n")
    };
    app(
        root,
        "clock",
        "clock",
        &format!("args = [\"--fixed\", \"12:34:56\"]\n{}", grant("")),
    );
    app(root, "notes", "notes", &grant("input = [\"keyboard\"]"));
    app(
        root,
        "paint",
        "paint",
        &grant("input = [\"keyboard\", \"pointer\", \"touch\"]"),
    );
    app(
        root,
        "smash",
        "smash",
        &format!(
            "args = [\"{smash_after_ms}\"]\n[restart]\npolicy = \"on-failure\"\nbackoff = \"1s\"\nintensity = 5\nperiod = \"1m\"\n{}",
            grant("")
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gui_apps_draw_and_the_operators_input_changes_what_they_draw() {
    let dir = tempfile::tempdir().unwrap();
    kiosk(dir.path(), 3_600_000);
    let (sup, d) = on_screen(dir.path(), Layout::Grid).await;
    for a in ["clock", "notes", "paint"] {
        wait_log(&sup, a, "drawing on a").await;
    }
    wait_log(&sup, "smash", "drew 4 bands").await;
    golden(&d, "kiosk-grid").await;
    // The console's `screenshot` writes what the display shows.
    let file = dir.path().join("shot.png");
    let cmd = vyoma_supervisor::console::Command::parse(&format!("screenshot {}", file.display())).unwrap();
    match vyoma_supervisor::console::execute(&sup, cmd).await.unwrap() {
        vyoma_supervisor::console::Reply::Screenshot(r) => assert_eq!((r.width, r.height), (SCREEN.w, SCREEN.h)),
        other => panic!("{other:?}"),
    }
    let written = vyoma_display::png::decode(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written, screen(&d));

    // A stroke in paint (its own coordinates), then typing into notes: a press in paint
    // focused it, so the operator gives notes the keyboard first.
    let drag = [(20, 20, Phase::Down), (150, 90, Phase::Move), (150, 90, Phase::Up)];
    sup.inject(
        Some("paint"),
        drag.iter()
            .map(|&(x, y, phase)| Input::Pointer { x, y, phase, button: 0 })
            .collect(),
    )
    .unwrap();
    sup.focus("notes").unwrap();
    sup.inject(Some("notes"), console_input("notes text Hi there")).unwrap();
    golden(&d, "kiosk-grid-input").await;

    // The focus chord, as from a keyboard: the next app in order gets the keyboard, and
    // notes hears that it lost it (its title bar turns grey).
    sup.inject(None, console_input("* key Tab ctrl+alt")).unwrap();
    assert_eq!(d.status().focused.as_deref(), Some("paint"));
    golden(&d, "kiosk-grid-chord").await;

    // Kiosk shows the focused app alone; paint learns its new size and fills it.
    sup.set_layout(Layout::Kiosk).unwrap();
    golden(&d, "kiosk-paint").await;

    // Input for an app that may not have it is refused with why.
    let e = sup
        .inject(
            Some("clock"),
            vec![Input::Pointer {
                x: 1,
                y: 1,
                phase: Phase::Down,
                button: 0,
            }],
        )
        .unwrap_err();
    assert!(e.to_string().contains("not granted `pointer`"), "{e}");
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gui_app_that_traps_shows_its_placeholder_while_the_others_keep_drawing() {
    let dir = tempfile::tempdir().unwrap();
    kiosk(dir.path(), 300);
    // The clock shows the real time here: it must keep changing while smash is down.
    std::fs::write(
        dir.path().join("clock/app.toml"),
        std::fs::read_to_string(dir.path().join("clock/app.toml"))
            .unwrap()
            .replace("args = [\"--fixed\", \"12:34:56\"]\n", ""),
    )
    .unwrap();
    let (sup, d) = on_screen(dir.path(), Layout::Grid).await;
    d.focus("smash").unwrap();
    let mut events = sup.events();
    wait_log(&sup, "smash", "drew 4 bands").await;
    // It traps, and waits out its backoff with a placeholder where it was.
    crate::common::events_until(&mut events, |e| e.app == "smash" && e.to == AppState::Backoff).await;
    let smash = d.status().apps.into_iter().find(|a| a.app == "smash").unwrap();
    assert_eq!(smash.placeholder.as_deref(), Some("restarting... 1/5"), "{smash:?}");
    assert_eq!(smash.surface, None, "a stopped instance's surface is freed");
    // The focus went back to the app focused before it.
    assert_ne!(d.status().focused.as_deref(), Some("smash"));
    // The clock keeps drawing meanwhile: its tile changes within a few seconds.
    let tile = d
        .status()
        .apps
        .iter()
        .find(|a| a.app == "clock")
        .and_then(|a| a.tile)
        .unwrap();
    let clock_pixels = |f: &Frame| crop(f, tile);
    let before = clock_pixels(&screen(&d));
    let changed = tokio::time::timeout(LONG, async {
        while clock_pixels(&screen(&d)) == before {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(changed.is_ok(), "the clock stopped drawing while smash was down");
    // Restarted, it draws again and the placeholder goes.
    wait(&sup, "smash", AppState::Running).await;
    let back = tokio::time::timeout(LONG, async {
        loop {
            let s = d.status().apps.into_iter().find(|a| a.app == "smash").unwrap();
            if s.placeholder.is_none() && s.surface.is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(back.is_ok(), "smash never drew again: {}", log_text(&sup, "smash"));
    sup.shutdown().await;
}

/// The events of the console's `input LINE`.
fn console_input(line: &str) -> Vec<Input> {
    let words: Vec<&str> = line.split_whitespace().collect();
    vyoma_supervisor::console::parse_input(&words, line)
        .unwrap_or_else(|e| panic!("{line}: {e}"))
        .1
}

/// The pixels of `f` inside `r`.
fn crop(f: &Frame, r: Rect) -> Vec<u32> {
    (r.y..r.y + r.h as i32)
        .flat_map(|y| (r.x..r.x + r.w as i32).map(move |x| f.at(x as u32, y as u32)))
        .collect()
}
