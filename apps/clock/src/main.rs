//! A clock: the time of day (UTC) in large digits, redrawn once a second. Only the
//! characters that changed are presented, so the display composes a few thousand pixels a
//! second. It follows its place on the screen: a new size redraws everything.
//! `--fixed HH:MM:SS` shows that time instead (for screenshots that must not change).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vyoma_sdk::display::{Canvas, LINE, Rect, char_width, rect};
use vyoma_sdk::{clock, lifecycle, poll};

const BACKGROUND: u32 = 0x00_10_20_30;
const DIGITS: u32 = 0x00_f0_d0_60;

fn now() -> String {
    let s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// The largest scale at which `chars` characters fit `c` (at least 1).
fn scale(c: &Canvas, chars: u32) -> u32 {
    (c.width / (char_width() * chars)).min(c.height / LINE).clamp(1, 8)
}

/// Where each character of an `n`-character text goes, centred.
fn cells(c: &Canvas, n: u32, scale: u32) -> Vec<Rect> {
    let (cw, ch) = (char_width() * scale, LINE * scale);
    let x0 = (c.width as i32 - (cw * n) as i32) / 2;
    let y0 = (c.height as i32 - ch as i32) / 2;
    (0..n).map(|i| rect(x0 + (i * cw) as i32, y0, cw, ch)).collect()
}

fn main() {
    let fixed = std::env::args().skip_while(|a| a != "--fixed").nth(1);
    let mut c = Canvas::new("clock").expect("clock: no surface (is `display` granted?)");
    println!("clock: drawing on a {}x{} surface", c.width, c.height);
    let stop = lifecycle::subscribe_stop();
    let mut shown = String::new();
    loop {
        let text = fixed.clone().unwrap_or_else(now);
        let n = text.chars().count() as u32;
        let k = scale(&c, n);
        let mut damage = Vec::new();
        if shown.is_empty() {
            c.clear(BACKGROUND);
            damage.push(rect(0, 0, c.width, c.height));
        }
        let old = shown.chars().chain(std::iter::repeat(' '));
        for ((cell, new), was) in cells(&c, n, k).into_iter().zip(text.chars()).zip(old) {
            if new != was || shown.is_empty() {
                c.fill(cell, BACKGROUND);
                c.text_scaled(cell.x, cell.y, &new.to_string(), DIGITS, k);
                damage.push(cell);
            }
        }
        if !damage.is_empty() {
            c.present(&damage).expect("clock: present");
        }
        shown = text;
        // Until the next whole second, a new size, or a stop request.
        let ms = 1000
            - SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_millis();
        let tick = clock::after(Duration::from_millis(u64::from(ms)));
        let resize = c.subscribe_resize().expect("clock: resize");
        if poll::poll(&[&stop, &tick, &resize]).contains(&0) {
            return;
        }
        if let Some((w, h)) = c.resized().filter(|s| *s != (c.width, c.height)) {
            c.resize(w, h).expect("clock: resize");
            shown.clear();
        }
    }
}
