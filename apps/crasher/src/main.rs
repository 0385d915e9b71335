//! Runs for a while, then panics: the panic becomes a wasm `unreachable` trap, which the
//! supervisor reports as the exit reason and hands to the app's restart policy.
//! The first argument is how long to run, in milliseconds (default 3000).
use std::time::Duration;

fn main() {
    let ms: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3000);
    println!("crasher: up, will panic in {ms} ms");
    std::thread::sleep(Duration::from_millis(ms));
    panic!("crasher: deliberate panic after {ms} ms");
}
