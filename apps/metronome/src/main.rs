//! A well-behaved periodic app that measures how late it wakes: every interval (default
//! 100 ms, or the first argument in milliseconds) it sleeps until the next tick of a fixed
//! schedule and prints `late N`, the microseconds between that tick and when it ran again.
//! The zoo benchmark collects these lines.
use std::time::{Duration, Instant};

fn main() {
    let ms: u64 = std::env::args()
        .nth(1)
        .map(|a| {
            a.parse()
                .expect("metronome: the argument is an interval in milliseconds")
        })
        .unwrap_or(100);
    let interval = Duration::from_millis(ms);
    let start = Instant::now();
    for k in 1u32.. {
        let tick = start + interval * k;
        let now = Instant::now();
        if tick > now {
            std::thread::sleep(tick - now);
        }
        let late = Instant::now().saturating_duration_since(tick);
        println!("late {}", late.as_micros());
    }
}
