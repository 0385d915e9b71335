//! An animation paced by the display's frame events: a box bouncing across the surface.
//! The first argument says what each frame presents: `full` (the whole surface redrawn,
//! the display benchmark's worst case), `box` (the box's old and new places only), or
//! `still` (one frame, then nothing: an idle app). It takes input events as they come
//! (the benchmark's input latency is measured up to here) and ignores them.

use vyoma_sdk::display::{Canvas, input, rect};
use vyoma_sdk::{lifecycle, poll};

const BACKGROUND: u32 = 0x00_18_28_38;
const BOX: u32 = 0x00_f0_a0_30;
const SIDE: i32 = 12;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "box".into());
    let mut c = Canvas::new("bounce").expect("bounce: no surface (is `display` granted?)");
    println!("bounce: {mode} on a {}x{} surface", c.width, c.height);
    let stop = lifecycle::subscribe_stop();
    c.clear(BACKGROUND);
    c.present_all().expect("bounce: present");
    let (mut x, mut y, mut dx, mut dy) = (0i32, 0i32, 3i32, 2i32);
    loop {
        if mode == "still" {
            let events = input::subscribe();
            if poll::poll(&[&stop, &events]).contains(&0) {
                return;
            }
            while input::next().is_some() {}
            continue;
        }
        c.request_frame().expect("bounce: frame");
        let frame = c.subscribe_frame().expect("bounce: frame");
        let events = input::subscribe();
        let ready = poll::poll(&[&stop, &frame, &events]);
        if ready.contains(&0) {
            return;
        }
        while input::next().is_some() {}
        if c.take_frame().is_none() {
            continue;
        }
        let old = rect(x, y, SIDE as u32, SIDE as u32);
        let (w, h) = (c.width as i32, c.height as i32);
        x += dx;
        y += dy;
        if x < 0 || x + SIDE > w {
            dx = -dx;
            x = x.clamp(0, (w - SIDE).max(0));
        }
        if y < 0 || y + SIDE > h {
            dy = -dy;
            y = y.clamp(0, (h - SIDE).max(0));
        }
        let new = rect(x, y, SIDE as u32, SIDE as u32);
        if mode == "full" {
            c.clear(BACKGROUND);
            c.fill(new, BOX);
            c.present_all().expect("bounce: present");
        } else {
            c.fill(old, BACKGROUND);
            c.fill(new, BOX);
            c.present(&[old, new]).expect("bounce: present");
        }
    }
}
