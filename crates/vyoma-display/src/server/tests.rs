use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::backend::Headless;
use crate::focus::Mods;

fn grant(keyboard: bool, pointer: bool) -> Grant {
    Grant {
        max: Size::new(400, 300),
        keyboard,
        pointer,
        touch: false,
    }
}

fn key(code: &str, down: bool) -> Input {
    Input::Key {
        code: code.into(),
        text: None,
        down,
        mods: Mods::default(),
    }
}

fn pointer(x: i32, y: i32, phase: Phase) -> Input {
    Input::Pointer { x, y, phase, button: 0 }
}

/// A 200x100 grid without a bar: `a` left, `b` right, each 100x100 with 2px frames.
fn two() -> Arc<Display> {
    let d = Display::new("headless", Size::new(200, 100), Layout::Grid, false);
    d.add_app("a", grant(true, true));
    d.add_app("b", grant(false, true));
    d
}

fn events(s: &Session) -> Vec<Event> {
    std::iter::from_fn(|| s.next_event()).collect()
}

#[test]
fn keys_reach_the_focused_app_only_with_a_keyboard_grant() {
    let d = two();
    let (a, b) = (d.attach("a").unwrap(), d.attach("b").unwrap());
    // `a` was focused when it attached.
    assert_eq!(events(&a), vec![Event::Focus(true)]);
    d.input(key("KeyX", true));
    assert_eq!(events(&a), vec![Event::Input(key("KeyX", true))]);
    d.focus("b").unwrap();
    d.input(key("KeyY", true));
    // `b` has no keyboard grant: no key, no focus event; `a` learns it lost the focus.
    assert_eq!(events(&b), vec![]);
    assert_eq!(events(&a), vec![Event::Focus(false)]);
}

#[test]
fn pointer_events_arrive_in_surface_coordinates_and_a_press_focuses() {
    let d = two();
    let (a, b) = (d.attach("a").unwrap(), d.attach("b").unwrap());
    events(&a);
    d.input(pointer(150, 50, Phase::Down));
    assert_eq!(events(&b), vec![Event::Input(pointer(48, 48, Phase::Down))]);
    assert_eq!(events(&a), vec![Event::Focus(false)]);
    assert_eq!(d.status().focused.as_deref(), Some("b"));
}

#[test]
fn moves_are_merged_and_a_full_queue_drops_the_oldest() {
    let d = two();
    let a = d.attach("a").unwrap();
    events(&a);
    for x in 10..20 {
        d.input(pointer(x, 10, Phase::Move));
    }
    assert_eq!(events(&a), vec![Event::Input(pointer(17, 8, Phase::Move))]);
    for i in 0..QUEUE + 10 {
        d.inject("a", key(&format!("K{i}"), true)).unwrap();
    }
    let got = events(&a);
    assert_eq!(got.len(), QUEUE);
    assert_eq!(got[0], Event::Input(key("K10", true)));
    assert_eq!(d.status().apps[0].dropped, 10);
    // Every event taken is one latency sample (the focus event and the merged move too).
    assert_eq!(d.stats().input_latency.len(), 2 + QUEUE);
}

#[test]
fn an_app_that_stops_drawing_gives_the_focus_back() {
    let d = two();
    let (a, b) = (d.attach("a").unwrap(), d.attach("b").unwrap());
    d.focus("b").unwrap();
    d.set_placeholder("b", Some("restarting... 1/5"), true);
    assert_eq!(d.status().focused.as_deref(), Some("a"));
    assert_eq!(
        events(&a),
        vec![Event::Focus(true), Event::Focus(false), Event::Focus(true)]
    );
    drop(b);
    // Alone on the display, it keeps the focus.
    d.remove_app("b");
    d.set_placeholder("a", Some("failed"), true);
    assert_eq!(d.status().focused.as_deref(), Some("a"));
}

#[test]
fn injection_is_refused_with_why() {
    let d = two();
    assert_eq!(
        d.inject("z", key("KeyA", true)),
        Err(InjectError::NotOnDisplay("z".into()))
    );
    let e = d.inject("b", key("KeyA", true)).unwrap_err();
    assert!(e.to_string().contains("not granted `keyboard`"), "{e}");
    assert_eq!(
        d.inject("a", key("KeyA", true)),
        Err(InjectError::NotRunning("a".into()))
    );
}

#[test]
fn frames_answer_visible_apps_and_hidden_ones_wait() {
    let d = Display::new("headless", Size::new(200, 100), Layout::Kiosk, false);
    d.add_app("a", grant(true, true));
    d.add_app("b", grant(true, true));
    let (a, b) = (d.attach("a").unwrap(), d.attach("b").unwrap());
    a.request_frame();
    b.request_frame();
    let mut backend = Headless::default();
    let t = d.tick(&mut backend);
    assert_eq!(t.frames, vec!["a".to_string()]);
    assert!(a.is_ready(|r| r.frame) && !b.is_ready(|r| r.frame));
    assert_eq!(a.take_frame(), Some(1));
    assert_eq!(a.take_frame(), None);
    assert!(!a.is_ready(|r| r.frame));
    // The whole screen is `a`'s in kiosk.
    assert_eq!(a.take_resize(), Some(Size::new(200, 100)));
    d.focus("b").unwrap();
    d.tick(&mut backend);
    assert_eq!(b.take_frame(), Some(2));
    assert_eq!(b.take_resize(), Some(Size::new(200, 100)));
}

#[test]
fn a_surface_is_sized_from_the_tile_capped_by_the_grant_and_one_at_a_time() {
    let d = two();
    let a = d.attach("a").unwrap();
    assert_eq!(a.create_surface(None, None, "a"), Ok(Size::new(96, 96)));
    assert_eq!(
        a.create_surface(None, None, "again"),
        Err(DisplayError::SurfaceExists("a".into()))
    );
    a.destroy_surface();
    assert_eq!(a.create_surface(Some(1000), None, "wide"), Ok(Size::new(400, 96)));
    assert_eq!(a.pixels_needed(), 400 * 96 * 4);
    a.draw(Rect::new(0, 0, 1, 1), &[7]).unwrap();
    assert_eq!(a.pixels_needed(), 0);
}

#[test]
fn a_new_surface_replaces_the_placeholder_and_an_ended_session_frees_it() {
    let d = two();
    d.set_placeholder("a", Some("restarting"), false);
    let old = d.attach("a").unwrap();
    old.create_surface(None, None, "t").unwrap();
    assert_eq!(d.status().apps[0].placeholder, None);
    // A restart attached anew before the old session was dropped: the old one's end
    // leaves the new instance's surface alone.
    let new = d.attach("a").unwrap();
    drop(old);
    assert!(d.status().apps[0].surface.is_some());
    drop(new);
    assert_eq!(d.status().apps[0].surface, None);
    assert_eq!(
        d.inject("a", key("KeyA", true)),
        Err(InjectError::NotRunning("a".into()))
    );
}

#[test]
fn a_screenshot_shows_what_was_presented_and_the_next_tick_still_flushes_it() {
    let d = Display::new("headless", Size::new(20, 10), Layout::Kiosk, false);
    d.add_app("a", grant(true, true));
    let a = d.attach("a").unwrap();
    a.create_surface(None, None, "t").unwrap();
    let mut backend = Headless::default();
    d.tick(&mut backend);
    a.draw(Rect::new(0, 0, 2, 1), &[0x00ff_0000, 0x0000_ff00]).unwrap();
    a.present(&[Rect::new(0, 0, 2, 1)]).unwrap();
    let (shot, _) = d.screenshot(None).unwrap();
    assert_eq!((shot.at(0, 0), shot.at(1, 0)), (0x00ff_0000, 0x0000_ff00));
    let t = d.tick(&mut backend);
    assert_eq!(t.damaged, vec![Rect::new(0, 0, 2, 1)]);
    // Two frames shown, one after the other: one interval between them.
    let st = d.stats();
    assert_eq!((st.frames, st.intervals.len()), (2, 1));
    d.tick(&mut backend);
    d.reset_stats();
    assert_eq!(d.stats(), Stats::default());
    let (one, title) = d.screenshot(Some("a")).unwrap();
    assert_eq!(
        (one.size, title.as_str(), one.at(1, 0)),
        (Size::new(20, 10), "t", 0x0000_ff00)
    );
}

/// Counts presents, shared with the test.
struct Counting(Arc<AtomicU64>);

impl Backend for Counting {
    fn name(&self) -> &str {
        "counting"
    }

    fn present(&mut self, _: &Frame, _: &[Rect]) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test(start_paused = true)]
async fn the_clock_sleeps_while_nothing_changes_and_paces_an_animation() {
    let d = Display::new("counting", Size::new(20, 10), Layout::Kiosk, false);
    d.add_app("a", grant(true, true));
    let a = d.attach("a").unwrap();
    a.create_surface(None, None, "t").unwrap();
    let shown = Arc::new(AtomicU64::new(0));
    let clock = tokio::spawn(d.clone().run(Box::new(Counting(shown.clone()))));
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The first frame (everything damaged at start), then nothing for a second.
    assert_eq!(shown.load(Ordering::Relaxed), 1);
    // An app drawing a frame per frame event: one present per period.
    let start = tokio::time::Instant::now();
    let mut frames = 0;
    while start.elapsed() < Duration::from_secs(1) {
        a.draw(Rect::new(0, 0, 1, 1), &[frames]).unwrap();
        a.present(&[Rect::new(0, 0, 1, 1)]).unwrap();
        a.request_frame();
        let mut ready = a.ready();
        ready.wait_for(|r| r.frame).await.unwrap();
        a.take_frame().unwrap();
        frames += 1;
    }
    assert!((59..=61).contains(&frames), "{frames} frames in a second");
    let before = shown.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(shown.load(Ordering::Relaxed), before);
    clock.abort();
}

#[tokio::test(start_paused = true)]
async fn taking_off_an_app_that_was_never_on_the_display_wakes_no_one() {
    // The supervisor says this of every app without the grant, at start and at each
    // deploy: a screen with no GUI app is never composed for it.
    let d = Display::new("counting", Size::new(20, 10), Layout::Grid, true);
    let shown = Arc::new(AtomicU64::new(0));
    let clock = tokio::spawn(d.clone().run(Box::new(Counting(shown.clone()))));
    for app in ["logger", "ticker", "echo"] {
        d.remove_app(app);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(shown.load(Ordering::Relaxed), 0, "nothing composed");
    // An app that is on it: taken off, the screen changes.
    d.add_app("a", grant(true, true));
    d.remove_app("a");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(shown.load(Ordering::Relaxed), 1);
    clock.abort();
}
