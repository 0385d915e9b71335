//! Draws colour bands, then traps: its tile shows the supervisor's placeholder
//! ("restarting... 1/5") while the restart policy brings it back, and the other apps keep
//! drawing. The first argument is how long to show the bands, in milliseconds.

use std::time::Duration;

use vyoma_sdk::display::{Canvas, rect};

const BANDS: [u32; 4] = [0x00_e0_40_40, 0x00_40_c0_40, 0x00_40_60_e0, 0x00_e0_e0_e0];

fn main() {
    let ms: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let mut c = Canvas::new("smash").expect("smash: no surface (is `display` granted?)");
    let band = c.height.div_ceil(BANDS.len() as u32).max(1);
    for (i, colour) in BANDS.iter().enumerate() {
        c.fill(rect(0, (i as u32 * band) as i32, c.width, band), *colour);
    }
    c.present_all().expect("smash: present");
    println!("smash: drew {} bands, trapping in {ms} ms", BANDS.len());
    std::thread::sleep(Duration::from_millis(ms));
    panic!("smash: deliberate trap after drawing");
}
