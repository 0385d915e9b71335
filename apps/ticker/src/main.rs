//! Long-running app: prints `tick N` every interval (default 1000 ms, or the first
//! argument in milliseconds). Sleeping costs it no OS thread in the supervisor.
use std::time::Duration;

fn main() {
    let ms: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("ticker: the argument is an interval in milliseconds"))
        .unwrap_or(1000);
    for n in 1u64.. {
        println!("tick {n}");
        std::thread::sleep(Duration::from_millis(ms));
    }
}
